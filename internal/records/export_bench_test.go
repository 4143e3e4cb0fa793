package records_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/export"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"
)

// exportBenchSizes are the dataset sizes of BenchmarkExport; set
// FIELDSYNC_EXPORT_BENCH=100000,1000000 for the full figures.
func exportBenchSizes() []int {
	spec := os.Getenv("FIELDSYNC_EXPORT_BENCH")
	if spec == "" {
		spec = "100000"
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// fillStore writes n realistic ~1 KB assessments straight into the store,
// 5,000 a transaction (the push path is measured elsewhere).
func fillStore(b *testing.B, st *store.Store, n int) {
	b.Helper()
	dev, _ := uuid.NewV7()
	now := time.Now()
	notes := "الأسرة تعيش في منزل من طابق واحد، الأب خرج من السجن منذ سنتين ويرغب في فتح مطعم صغير في السوق الأسبوعي. الزوجة تعمل في الخياطة. ثلاثة أطفال يتابعون دراستهم."
	sectors := []string{"catering", "crafts", "services", "agriculture"}
	for done := 0; done < n; {
		err := st.Update(context.Background(), func(tx records.Tx) error {
			for k := 0; k < 5000 && done < n; k, done = k+1, done+1 {
				id, _ := uuid.NewV7()
				f := map[string]any{"head_name": "فاطمة الزهراء بنت محمد", "household_size": 3 + done%6, "monthly_income_mad": 800 + done%2400,
					"sector": sectors[done%4], "requested_mad": 15000 + done%60000, "village": "تيغمرت، إقليم كلميم", "notes": notes,
					"phone": fmt.Sprintf("+2126%08d", done), "gps": map[string]float64{"lat": 28.98, "lon": -10.05}, "visit_date": "2026-11-02"}
				raw := map[string]json.RawMessage{}
				for k, v := range f {
					raw[k], _ = json.Marshal(v)
				}
				s := sp.State{ID: id.String(), Form: "assessment", Scope: "guelmim-oued-noun", Clock: sp.Clock{dev.String(): 1},
					Writes: []sp.Write{{By: dev.String(), N: 1, At: now.UnixMilli(), Fields: raw}}}
				if err := tx.PutRecord(nil, &records.Stored{State: s, CreatedAt: now, UpdatedAt: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// heapPeak samples the Go heap while an export runs.
type heapPeak struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func watchHeap() *heapPeak {
	h := &heapPeak{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if v := ms.HeapInuse + ms.StackInuse; v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return h
}

func (h *heapPeak) Stop() uint64 { close(h.stop); <-h.done; return h.peak.Load() }

// BenchmarkExport streams JSONL through zstd (as the HTTP layer does for
// Accept-Encoding: zstd) over a dataset of 100k (and, with
// FIELDSYNC_EXPORT_BENCH, 1M) ~1 KB records, and reports records/s, the
// compressed bytes and the peak Go heap during the export.
func BenchmarkExport(b *testing.B) {
	for _, n := range exportBenchSizes() {
		b.Run(fmt.Sprintf("records=%d/jsonl+zstd", n), func(b *testing.B) {
			st, err := store.Open(b.TempDir(), store.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			fillStore(b, st, n)
			hq := &auth.Account{ID: uuid.NewString(), Role: auth.RoleHQ, Name: "hq"}
			svc := records.NewService(st, records.Options{})
			runtime.GC()
			b.ResetTimer()
			var peak uint64
			var written int64
			start := time.Now()
			for i := 0; i < b.N; i++ {
				cw := &countingWriter{}
				zw, _ := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
				enc := export.NewJSONL(zw, export.Options{})
				h := watchHeap()
				got, err := svc.Export(context.Background(), hq, records.ExportQuery{}, enc)
				if err == nil {
					err = enc.Close()
				}
				if err == nil {
					err = zw.Close()
				}
				if p := h.Stop(); p > peak {
					peak = p
				}
				if err != nil || got != n {
					b.Fatalf("exported %d of %d: %v", got, n, err)
				}
				written = cw.n
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(written)/(1<<20), "zstd-MiB")
		})
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)
