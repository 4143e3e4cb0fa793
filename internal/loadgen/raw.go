package loadgen

// The raw limit of the machine: what the same bytes cost with nothing but
// encoding/json and bbolt, no HTTP, no merge, no index. bbolt is opened with
// the server's options (map freelist, 1 GiB initial mmap, fsync on commit).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

// RawResult is the raw limit of the machine for the same records.
type RawResult struct {
	// DecodeWorkers is how many goroutines decode at once (runtime.NumCPU).
	DecodeWorkers int `json:"decode_workers"`
	// DecodeMapRPS: records/s decoding the push bodies into map[string]any.
	DecodeMapRPS float64 `json:"decode_map_records_per_s"`
	// DecodeStructRPS: records/s decoding the push bodies into
	// {device, batch, records []json.RawMessage} and then each item into
	// syncproto.State, as the server does (no validation).
	DecodeStructRPS float64 `json:"decode_struct_records_per_s"`
	// BoltPutRPS: records/s putting each item's JSON under its 16-byte id,
	// one transaction with fsync per batch, one writer.
	BoltPutRPS float64 `json:"bolt_put_records_per_s"`
	// BoltCommitP50Ms is the median time of one such transaction.
	BoltCommitP50Ms float64 `json:"bolt_commit_p50_ms"`
	// PushRPS: records/s decoding (struct) and putting each batch (one
	// transaction with fsync per batch) from as many workers as the push
	// of 8 devices: the raw ceiling of a durable push.
	PushRPS     float64 `json:"push_records_per_s"`
	PushWorkers int     `json:"push_workers"`
	// DecodeStructCPUUs and PushCPUUs are the CPU microseconds a record
	// took in those two measurements: unlike records/s, other work on the
	// machine hardly changes them.
	DecodeStructCPUUs float64 `json:"decode_struct_cpu_us_per_record"`
	PushCPUUs         float64 `json:"push_cpu_us_per_record"`
	// ScanRPS: records/s reading every record back in key order and
	// assembling pages of PullLimit as a pull answer (bytes appended).
	ScanRPS float64 `json:"scan_records_per_s"`
	// ScanZstdRPS, ScanGzipRPS: the same, each page compressed as the
	// server's handler does (zstd fastest, gzip default level).
	ScanZstdRPS float64 `json:"scan_zstd_records_per_s"`
	ScanGzipRPS float64 `json:"scan_gzip_records_per_s"`
	// Bytes of all pages as JSON, zstd- and gzip-compressed.
	PageBytes int64 `json:"page_bytes"`
	ZstdBytes int64 `json:"zstd_bytes"`
	GzipBytes int64 `json:"gzip_bytes"`
	// SyncOneMs is the median time of one device's sync done raw, alone:
	// decode a push of SyncPush records, put them (one transaction with
	// fsync), read the first page of PullLimit records, zstd-compress it.
	SyncOneMs float64 `json:"sync_one_ms"`
	// DBBytes is the size of the bbolt file holding the records.
	DBBytes int64 `json:"db_bytes"`
}

var rawBucket = []byte("records")

func openRawDB(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, FreelistType: bolt.FreelistMapType, InitialMmapSize: 1 << 30})
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(rawBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

type rawItem struct {
	key []byte
	val []byte
}

// decodeStruct decodes a push body as the server does, without validation,
// and returns each item's key and bytes.
func decodeStruct(body []byte) ([]rawItem, error) {
	var req sp.PushRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	out := make([]rawItem, len(req.Records))
	for i, r := range req.Records {
		var st sp.State
		if err := json.Unmarshal(r, &st); err != nil {
			return nil, err
		}
		id, err := uuid.Parse(st.ID)
		if err != nil {
			return nil, err
		}
		out[i] = rawItem{key: id[:], val: r}
	}
	return out, nil
}

func putItems(db *bolt.DB, items []rawItem) error {
	return db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(rawBucket)
		for _, it := range items {
			if err := b.Put(it.key, it.val); err != nil {
				return err
			}
		}
		return nil
	})
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns
// the wall time.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	start := time.Now()
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := ctx.Err(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// measureRaw measures the raw limit on the push bodies batches, with its
// bbolt files in dir.
func measureRaw(ctx context.Context, dir string, batches []batch, pushWorkers, pullLimit, syncPush int, progress func(string, ...any)) (*RawResult, error) {
	r := &RawResult{DecodeWorkers: runtime.NumCPU(), PushWorkers: pushWorkers}
	total := 0
	for _, b := range batches {
		total += b.records
	}

	progress("raw: encoding/json into map, %d records on %d goroutines", total, r.DecodeWorkers)
	d, err := parallel(ctx, len(batches), r.DecodeWorkers, func(i int) error {
		var m map[string]any
		return json.Unmarshal(batches[i].body, &m)
	})
	if err != nil {
		return nil, err
	}
	r.DecodeMapRPS = float64(total) / d.Seconds()

	progress("raw: encoding/json into structs")
	items := make([][]rawItem, len(batches))
	cpu := selfCPU()
	d, err = parallel(ctx, len(batches), r.DecodeWorkers, func(i int) error {
		var err error
		items[i], err = decodeStruct(batches[i].body)
		return err
	})
	if err != nil {
		return nil, err
	}
	r.DecodeStructRPS = float64(total) / d.Seconds()
	r.DecodeStructCPUUs = (selfCPU() - cpu) / float64(total) * 1e6

	progress("raw: bbolt puts, %d records a transaction with fsync", batches[0].records)
	putPath := filepath.Join(dir, "raw-put.db")
	db, err := openRawDB(putPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	commits := make([]time.Duration, 0, len(items))
	start := time.Now()
	for _, its := range items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t := time.Now()
		if err := putItems(db, its); err != nil {
			return nil, err
		}
		commits = append(commits, time.Since(t))
	}
	r.BoltPutRPS = float64(total) / time.Since(start).Seconds()
	r.BoltCommitP50Ms = ms(percentile(commits, 50))
	items = nil

	progress("raw: decode + bbolt put from %d workers", pushWorkers)
	pdb, err := openRawDB(filepath.Join(dir, "raw-push.db"))
	if err != nil {
		return nil, err
	}
	cpu = selfCPU()
	d, err = parallel(ctx, len(batches), pushWorkers, func(i int) error {
		its, err := decodeStruct(batches[i].body)
		if err != nil {
			return err
		}
		return putItems(pdb, its)
	})
	pdb.Close()
	os.Remove(filepath.Join(dir, "raw-push.db"))
	if err != nil {
		return nil, err
	}
	r.PushRPS = float64(total) / d.Seconds()
	r.PushCPUUs = (selfCPU() - cpu) / float64(total) * 1e6

	progress("raw: reading every record back as pages of %d (plain, zstd, gzip)", pullLimit)
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer zenc.Close()
	var zbuf []byte
	zstdPage := func(page []byte) int64 {
		zbuf = zenc.EncodeAll(page, zbuf[:0])
		return int64(len(zbuf))
	}
	var gbuf bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&gbuf, gzip.DefaultCompression)
	gzipPage := func(page []byte) int64 {
		gbuf.Reset()
		gw.Reset(&gbuf)
		gw.Write(page)
		gw.Close()
		return int64(gbuf.Len())
	}
	for _, m := range []struct {
		rps   *float64
		bytes *int64
		send  func([]byte) int64
	}{
		{&r.ScanRPS, &r.PageBytes, func(p []byte) int64 { return int64(len(p)) }},
		{&r.ScanZstdRPS, &r.ZstdBytes, zstdPage},
		{&r.ScanGzipRPS, &r.GzipBytes, gzipPage},
	} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		n, b, err := scanPages(db, nil, pullLimit, -1, m.send)
		if err != nil {
			return nil, err
		}
		if n != total {
			return nil, fmt.Errorf("raw scan read %d records, want %d", n, total)
		}
		*m.rps = float64(n) / time.Since(start).Seconds()
		*m.bytes = b
	}

	progress("raw: one device's sync alone (%d records pushed, a page of %d pulled)", syncPush, pullLimit)
	const syncRuns = 25
	ids := []string{uuid.Must(uuid.NewV7()).String()}
	small, err := makeBatches(ctx, 7, ids, syncRuns, syncPush)
	if err != nil {
		return nil, err
	}
	times := make([]time.Duration, 0, syncRuns)
	for _, b := range small {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t := time.Now()
		its, err := decodeStruct(b.body)
		if err != nil {
			return nil, err
		}
		if err := putItems(db, its); err != nil {
			return nil, err
		}
		if _, _, err := scanPages(db, nil, pullLimit, 1, zstdPage); err != nil {
			return nil, err
		}
		times = append(times, time.Since(t))
	}
	r.SyncOneMs = ms(percentile(times, 50))
	if fi, err := os.Stat(putPath); err == nil {
		r.DBBytes = fi.Size()
	}
	return r, nil
}

// scanPages reads the records after key from (all when nil) in pages of
// limit, at most maxPages pages (all when < 0), assembles each as a pull
// answer and passes it to send. It returns the records read and the sum of
// what send returned.
func scanPages(db *bolt.DB, from []byte, limit, maxPages int, send func([]byte) int64) (int, int64, error) {
	var n int
	var sent int64
	page := make([]byte, 0, limit*1400)
	err := db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(rawBucket).Cursor()
		var k, v []byte
		if from == nil {
			k, v = c.First()
		} else {
			k, v = c.Seek(from)
			if bytes.Equal(k, from) {
				k, v = c.Next()
			}
		}
		for pages := 0; k != nil && pages != maxPages; pages++ {
			page = append(page[:0], `{"records":[`...)
			i := 0
			for ; k != nil && i < limit; k, v = c.Next() {
				if i > 0 {
					page = append(page, ',')
				}
				page = append(page, v...)
				i++
			}
			more := k != nil
			page = fmt.Appendf(page, `],"cursor":"%032x","more":%t}`, n+i, more)
			page = append(page, '\n')
			n += i
			sent += send(page)
		}
		return nil
	})
	return n, sent, err
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1)*p/100 + 0.5)
	return s[min(i, len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
