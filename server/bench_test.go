package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store"
	"github.com/fieldsync/fieldsync/server"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// benchServer serves the real API over loopback HTTP on a real bbolt file.
func benchServer(b *testing.B) (*httptest.Server, *auth.Service) {
	b.Helper()
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	accounts := auth.NewService(st, nil)
	api := server.New(server.Options{Records: records.NewService(st, records.Options{}), Auth: accounts})
	ts := httptest.NewServer(api.Handler())
	b.Cleanup(ts.Close)
	return ts, accounts
}

var sectors = []string{"catering", "crafts", "services", "agriculture"}

// assessment returns a realistic ~1 KB household assessment by device dev.
func assessment(dev string, i int) sp.State {
	id, _ := uuid.NewV7()
	fields := map[string]any{
		"head_name":          "فاطمة الزهراء بنت محمد",
		"household_size":     3 + i%6,
		"monthly_income_mad": 800 + (i*37)%2400,
		"sector":             sectors[i%len(sectors)],
		"requested_mad":      15000 + (i*101)%60000,
		"village":            "تيغمرت، إقليم كلميم",
		"notes":              "الأسرة تعيش في منزل من طابق واحد، الأب خرج من السجن منذ سنتين ويرغب في فتح مطعم صغير لبيع الوجبات السريعة في السوق الأسبوعي. الزوجة تعمل في الخياطة. ثلاثة أطفال يتابعون دراستهم.",
		"phone":              fmt.Sprintf("+2126%08d", i),
		"gps":                map[string]float64{"lat": 28.98 + float64(i%100)/1000, "lon": -10.05},
		"visit_date":         "2026-11-02",
	}
	raw := map[string]json.RawMessage{}
	for k, v := range fields {
		raw[k], _ = json.Marshal(v)
	}
	return sp.State{ID: id.String(), Form: "assessment", Scope: "guelmim-oued-noun", Clock: sp.Clock{dev: 1},
		Writes: []sp.Write{{By: dev, N: 1, At: time.Now().UnixMilli(), Fields: raw}}}
}

func pushBody(dev string, items []sp.State) []byte {
	batch, _ := uuid.NewV7()
	b, _ := json.Marshal(map[string]any{"device": dev, "batch": batch.String(), "records": items})
	return b
}

// BenchmarkPush measures durable push throughput over HTTP: batches of 500
// ~1 KB records, answered after commit, from 1 and 8 concurrent devices.
func BenchmarkPush(b *testing.B) {
	for _, devices := range []int{1, 8} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) {
			ts, accounts := benchServer(b)
			type dev struct{ id, token string }
			devs := make([]dev, devices)
			for i := range devs {
				a, tok, err := accounts.Create(context.Background(), auth.RoleDevice, fmt.Sprintf("tablet %d", i), []string{"guelmim-oued-noun"})
				if err != nil {
					b.Fatal(err)
				}
				devs[i] = dev{a.ID, tok}
			}
			// Bodies are built before the clock starts.
			bodies := make([][][]byte, devices)
			per := (b.N + devices - 1) / devices
			for d := range devs {
				for j := 0; j < per; j++ {
					items := make([]sp.State, 500)
					for k := range items {
						items[k] = assessment(devs[d].id, j*500+k)
					}
					bodies[d] = append(bodies[d], pushBody(devs[d].id, items))
				}
			}
			b.SetBytes(int64(len(bodies[0][0])))
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for d := range devs {
				wg.Add(1)
				go func(d int) {
					defer wg.Done()
					for _, body := range bodies[d] {
						req, _ := http.NewRequest("POST", ts.URL+"/v1/sync/push", bytes.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+devs[d].token)
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							b.Errorf("push: %d", resp.StatusCode)
							return
						}
					}
				}(d)
			}
			wg.Wait()
			b.StopTimer()
			n := per * devices * 500
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// BenchmarkPushEdits measures durable pushes of edits to records the
// server holds: batches of 500 items, each the record's full state as a
// tablet holds it after a second save that changed two fields (the merge
// path, not the path of new records), from 1 and 8 devices at once.
func BenchmarkPushEdits(b *testing.B) {
	for _, devices := range []int{1, 8} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) {
			ts, accounts := benchServer(b)
			per := (b.N + 500*devices - 1) / (500 * devices) // batches a device
			bodies := make([][][]byte, devices)
			tokens := make([]string, devices)
			for d := range devices {
				a, tok, err := accounts.Create(context.Background(), auth.RoleDevice, fmt.Sprintf("tablet %d", d), []string{"guelmim-oued-noun"})
				if err != nil {
					b.Fatal(err)
				}
				tokens[d] = tok
				for j := 0; j < per; j++ {
					created := make([]sp.State, 500)
					edits := make([]sp.State, 500)
					for k := range created {
						st := assessment(a.ID, j*500+k)
						created[k] = st
						first := sp.Write{By: a.ID, N: 1, At: st.Writes[0].At, Fields: map[string]json.RawMessage{}}
						for name, v := range st.Writes[0].Fields {
							if name != "household_size" && name != "monthly_income_mad" {
								first.Fields[name] = v
							}
						}
						edits[k] = sp.State{ID: st.ID, Form: st.Form, Scope: st.Scope, Clock: sp.Clock{a.ID: 2}, Writes: []sp.Write{first,
							{By: a.ID, N: 2, At: st.Writes[0].At + 1000, Fields: map[string]json.RawMessage{
								"household_size": json.RawMessage(`7`), "monthly_income_mad": json.RawMessage(`1500`)}}}}
					}
					do(b, "POST", ts.URL+"/v1/sync/push", tok, pushBody(a.ID, created), 200)
					bodies[d] = append(bodies[d], pushBody(a.ID, edits))
				}
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for d := range devices {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, body := range bodies[d] {
						req, _ := http.NewRequest("POST", ts.URL+"/v1/sync/push", bytes.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+tokens[d])
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						answer, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 || bytes.Contains(answer, []byte(`"conflict"`)) || bytes.Contains(answer, []byte(`"rejected"`)) {
							b.Errorf("an edit was not applied cleanly: %d %.300s", resp.StatusCode, answer)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(devices*per*500)/time.Since(start).Seconds(), "records/s")
		})
	}
}
