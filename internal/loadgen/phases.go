package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// PushResult is one push measurement: batches of BatchSize records from
// Devices devices at once, each device sending its batches one after the
// other; every answer comes after the batch is durable.
type PushResult struct {
	Devices     int     `json:"devices"`
	Batches     int     `json:"batches"`
	BatchSize   int     `json:"batch_size"`
	Records     int     `json:"records"`
	BodyBytes   int64   `json:"body_bytes"`
	Seconds     float64 `json:"seconds"`
	RecordsPerS float64 `json:"records_per_s"`
	BatchP50Ms  float64 `json:"batch_p50_ms"`
	BatchP99Ms  float64 `json:"batch_p99_ms"`
	BatchMaxMs  float64 `json:"batch_max_ms"`
	// What the measurement cost: CPU seconds of the server and of the
	// generator, bytes the server wrote to storage.
	usage
}

// pushAll pushes every batch, batch.device naming the device of devs that
// sends it, all devices at once. It checks that every item was applied.
func pushAll(ctx context.Context, hc *http.Client, s *server, devs []device, batches []batch) (*PushResult, error) {
	r := &PushResult{Devices: len(devs), Batches: len(batches), BatchSize: batches[0].records}
	per := make([][]batch, len(devs))
	for _, b := range batches {
		per[b.device] = append(per[b.device], b)
		r.Records += b.records
		r.BodyBytes += int64(len(b.body))
	}
	lat := make([][]time.Duration, len(devs))
	errs := make([]error, len(devs))
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for d := range devs {
		wg.Go(func() {
			<-gate
			for _, b := range per[d] {
				t := time.Now()
				if err := push(ctx, hc, s, devs[d], b.body, b.records); err != nil {
					errs[d] = err
					return
				}
				lat[d] = append(lat[d], time.Since(t))
			}
		})
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	wall := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	r.Seconds = wall.Seconds()
	r.RecordsPerS = float64(r.Records) / wall.Seconds()
	r.BatchP50Ms, r.BatchP99Ms, r.BatchMaxMs = ms(percentile(all, 50)), ms(percentile(all, 99)), ms(percentile(all, 100))
	return r, nil
}

// push sends one body and checks that its want items were all applied.
func push(ctx context.Context, hc *http.Client, s *server, d device, body []byte, want int) error {
	var resp sp.PushResponse
	if err := doJSON(ctx, hc, "POST", s.url+"/v1/sync/push", d.Token, body, 200, &resp); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if len(resp.Results) != want {
		return fmt.Errorf("push: %d results for %d items", len(resp.Results), want)
	}
	for _, res := range resp.Results {
		if res.Status != sp.StatusApplied {
			msg := ""
			if res.Error != nil {
				msg = fmt.Sprintf(": %s %s", res.Error.Code, res.Error.Message)
			}
			return fmt.Errorf("push: item %s is %s%s", res.ID, res.Status, msg)
		}
	}
	return nil
}

// PullResult is one full pull: every record from the start, page after
// page by cursor, by one client.
type PullResult struct {
	Encoding    string  `json:"encoding"` // the Accept-Encoding sent ("identity", "zstd", "gzip")
	Limit       int     `json:"limit"`
	Records     int     `json:"records"`
	Pages       int     `json:"pages"`
	Seconds     float64 `json:"seconds"`
	RecordsPerS float64 `json:"records_per_s"`
	// WireBytes counts what the client read from its connections: the
	// answers' headers, chunk framing and bodies as sent.
	WireBytes int64 `json:"wire_bytes"`
	// BodyBytes is the bodies as sent (compressed), JSONBytes after
	// decompression.
	BodyBytes int64  `json:"body_bytes"`
	JSONBytes int64  `json:"json_bytes"`
	Cursor    string `json:"-"`
	// What the measurement cost: CPU seconds of the server and of the
	// generator, bytes the server wrote to storage.
	usage
}

// pageReader fetches pull pages with one Accept-Encoding and decodes them.
// It is safe for concurrent use.
type pageReader struct {
	hc   *http.Client
	enc  string        // Accept-Encoding to send; "identity" for none
	zdec *zstd.Decoder // DecodeAll is safe for concurrent use
}

func newPageReader(hc *http.Client, enc string, concurrency int) (*pageReader, error) {
	zd, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(concurrency), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return nil, err
	}
	return &pageReader{hc: hc, enc: enc, zdec: zd}, nil
}

func (p *pageReader) close() { p.zdec.Close() }

// page is what a client needs of a pull answer.
type page struct {
	Records int
	Cursor  string
	More    bool
}

// parsePage reads a pull answer {"records": [...], "cursor", "more"}
// cheaply: it counts the records with a byte scan (strings and nesting
// tracked; a string is skipped with bytes.IndexByte, as most of a page is
// strings) and decodes only what follows the array, so that the
// generator, which shares the machine with the server, spends little CPU
// on it. Anything unexpected falls back to encoding/json.
func parsePage(body []byte) (page, error) {
	var pg page
	depth := 0
	end := -1 // index just after the records array
scan:
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '"':
			if i = sp.StringEnd(body, i); i < 0 {
				break scan
			}
		case '{', '[':
			if depth == 2 && c == '{' {
				pg.Records++
			}
			depth++
		case '}', ']':
			depth--
			if depth == 1 && c == ']' {
				end = i + 1
				break scan
			}
		}
	}
	prefix := bytes.TrimLeft(body, " \t\r\n")
	if end > 0 && bytes.HasPrefix(prefix, []byte(`{"records":[`)) {
		rest := bytes.TrimLeft(body[end:], " \t\r\n")
		if r, ok := bytes.CutPrefix(rest, []byte(",")); ok {
			if tail, ok := readTail(r); ok {
				tail.Records = pg.Records
				return tail, nil
			}
		}
	}
	var full struct {
		Records []json.RawMessage `json:"records"`
		Cursor  string            `json:"cursor"`
		More    bool              `json:"more"`
	}
	if err := json.Unmarshal(body, &full); err != nil {
		return page{}, err
	}
	return page{Records: len(full.Records), Cursor: full.Cursor, More: full.More}, nil
}

// pull fetches one page after cursor since ("" from the start) and returns
// it with the sizes of its body as sent and as JSON.
func (p *pageReader) pull(ctx context.Context, s *server, token, since string, limit int) (page, int64, int64, error) {
	body, sent, err := p.fetch(ctx, s, token, since, limit)
	if err != nil {
		return page{}, 0, 0, err
	}
	pg, err := parsePage(body)
	if err != nil {
		return page{}, 0, 0, fmt.Errorf("pull: %w", err)
	}
	return pg, sent, int64(len(body)), nil
}

// fetch fetches one page after cursor since ("" from the start) and returns
// its JSON, decompressed, with the size of its body as sent.
func (p *pageReader) fetch(ctx context.Context, s *server, token, since string, limit int) ([]byte, int64, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if since != "" {
		q.Set("since", since)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", s.url+"/v1/sync/pull?"+q.Encode(), nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept-Encoding", p.enc)
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("pull: %w", err)
	}
	body, err := readAll(resp)
	resp.Body.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("pull: reading the answer: %w", err)
	}
	sent := int64(len(body))
	switch ce := strings.ToLower(resp.Header.Get("Content-Encoding")); ce {
	case "":
	case "zstd":
		if body, err = p.zdec.DecodeAll(body, make([]byte, 0, 8*len(body))); err != nil {
			return nil, 0, fmt.Errorf("pull: zstd: %w", err)
		}
	case "gzip":
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(body)); err == nil {
			var out bytes.Buffer
			out.Grow(8 * len(body))
			_, err = out.ReadFrom(zr)
			body = out.Bytes()
		}
		if err != nil {
			return nil, 0, fmt.Errorf("pull: gzip: %w", err)
		}
	default:
		return nil, 0, fmt.Errorf("pull: unexpected Content-Encoding %q", ce)
	}
	if resp.StatusCode != 200 {
		return nil, 0, fmt.Errorf("pull: %d %s", resp.StatusCode, cut(body, 300))
	}
	return body, sent, nil
}

// pullAll pulls everything from the start with Accept-Encoding enc and
// checks that it got want records. As a client that stores a page while it
// fetches the next, it asks for the next page as soon as it has read the
// cursor at the end of this one (pageTail), and counts this one's records
// meanwhile; the count then checks the cursor it read.
func pullAll(ctx context.Context, s *server, token, enc string, limit, want int) (*PullResult, error) {
	wc := &wireCounter{}
	tr := newTransport(4, wc)
	defer tr.CloseIdleConnections()
	pr, err := newPageReader(&http.Client{Transport: tr, Timeout: 5 * time.Minute}, enc, 1)
	if err != nil {
		return nil, err
	}
	defer pr.close()
	r := &PullResult{Encoding: enc, Limit: limit}

	type fetched struct {
		body []byte
		tail page // the cursor and more that pageTail read
	}
	pages := make(chan fetched, 2)
	counted := make(chan error, 1)
	go func() {
		var err error
		n := 0
		for f := range pages {
			if n++; err != nil {
				continue
			}
			pg, perr := parsePage(f.body)
			switch {
			case perr != nil:
				err = fmt.Errorf("pull (%s): page %d: %w", enc, n, perr)
			case pg.Cursor != f.tail.Cursor || pg.More != f.tail.More:
				err = fmt.Errorf("pull (%s): the page's end read as %+v, the whole page as %+v", enc, f.tail, pg)
			default:
				r.Records += pg.Records
			}
		}
		counted <- err
	}()
	// stop ends the counting and returns its error.
	stop := func() error {
		close(pages)
		return <-counted
	}

	cursor := ""
	start := time.Now()
	// A bound on the pages: twice what want needs, in case the feed
	// never ends.
	for maxPages := 2*(want/limit) + 10; ; {
		body, sent, err := pr.fetch(ctx, s, token, cursor, limit)
		if err != nil {
			stop()
			return nil, err
		}
		tail, ok := pageTail(body)
		if !ok {
			if tail, err = parsePage(body); err != nil {
				stop()
				return nil, fmt.Errorf("pull: %w", err)
			}
		}
		pages <- fetched{body, tail}
		r.Pages++
		r.BodyBytes += sent
		r.JSONBytes += int64(len(body))
		if tail.Cursor != "" {
			cursor = tail.Cursor
		}
		if !tail.More {
			break
		}
		if r.Pages >= maxPages {
			stop()
			return nil, fmt.Errorf("pull: still more after %d pages", r.Pages)
		}
	}
	if err := stop(); err != nil {
		return nil, err
	}
	wall := time.Since(start)
	if r.Records != want {
		return nil, fmt.Errorf("pull (%s): got %d records, want %d", enc, r.Records, want)
	}
	r.Seconds = wall.Seconds()
	r.RecordsPerS = float64(r.Records) / wall.Seconds()
	r.WireBytes = wc.read.Load()
	r.Cursor = cursor
	return r, nil
}

// pageTail reads the cursor and more of a pull answer from its end, as the
// server writes it: {"records":[...],"cursor":"...","more":...}. It does
// not count the records (Records is 0). ok is false when the answer is not
// in that form; parsePage reads it then.
func pageTail(body []byte) (pg page, ok bool) {
	if !bytes.HasPrefix(body, []byte(`{"records":[`)) {
		return page{}, false
	}
	// The last "]," before "cursor" at the top level: the bytes `],"`
	// cannot be inside a JSON string, and the server's answer ends with
	// its cursor and more.
	i := bytes.LastIndex(body, []byte(`],"cursor":`))
	if i < 0 {
		return page{}, false
	}
	return readTail(body[i+2:])
}

// readTail reads the members that follow a page's records array, r being
// what comes after its comma: the cursor and more, both required. ok is
// false for anything else, a second records key included (encoding/json
// would take that one).
func readTail(r []byte) (pg page, ok bool) {
	var tail struct {
		Cursor  *string         `json:"cursor"`
		More    *bool           `json:"more"`
		Records json.RawMessage `json:"records"`
	}
	if json.Unmarshal(append([]byte("{"), r...), &tail) != nil || tail.Cursor == nil || tail.More == nil || tail.Records != nil {
		return page{}, false
	}
	return page{Cursor: *tail.Cursor, More: *tail.More}, true
}

// SyncResult is the many-devices measurement: Devices devices, all at
// once, each pushing Push records in one batch and then pulling one page
// (limit Limit): half from the start, half from the cursor at the head of
// the feed before the run. Latency is push + pull, per device.
type SyncResult struct {
	Devices       int     `json:"devices"`
	Push          int     `json:"push_records_each"`
	Limit         int     `json:"limit"`
	FromStart     int     `json:"from_start"`
	FromCursor    int     `json:"from_cursor"`
	Encoding      string  `json:"accept_encoding"`
	MaxInFlight   int     `json:"max_in_flight"`
	RecordsPushed int     `json:"records_pushed"`
	RecordsPulled int64   `json:"records_pulled"`
	WireBytes     int64   `json:"wire_bytes_read"`
	Seconds       float64 `json:"seconds"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	PushP50Ms     float64 `json:"push_p50_ms"`
	PushP99Ms     float64 `json:"push_p99_ms"`
	PullP50Ms     float64 `json:"pull_p50_ms"`
	PullP99Ms     float64 `json:"pull_p99_ms"`
	// RawBackToBackS is how long the raw limit takes for all these syncs
	// one after the other (Devices × the raw sync of one device).
	RawBackToBackS float64 `json:"raw_back_to_back_s"`
	// What the measurement cost: CPU seconds of the server and of the
	// generator, bytes the server wrote to storage.
	usage
}

// syncMany runs the many-devices measurement. headCursor is a cursor at
// the head of the feed.
func syncMany(ctx context.Context, s *server, devs []device, bodies [][]byte, per, limit int, headCursor string) (*SyncResult, error) {
	const enc = "zstd, gzip" // what the tablets' client sends
	n := len(devs)
	r := &SyncResult{Devices: n, Push: per, Limit: limit, Encoding: enc}
	wc := &wireCounter{}
	tr := newTransport(n, wc)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	pr, err := newPageReader(hc, enc, runtime.NumCPU())
	if err != nil {
		return nil, err
	}
	defer pr.close()

	total := make([]time.Duration, n)
	pushes := make([]time.Duration, n)
	pulls := make([]time.Duration, n)
	errs := make([]error, n)
	var pulled atomic.Int64
	var inFlight, maxInFlight atomic.Int64
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range devs {
		since := ""
		if i%2 == 1 {
			since = headCursor
			r.FromCursor++
		} else {
			r.FromStart++
		}
		wg.Go(func() {
			<-gate
			f := inFlight.Add(1)
			for m := maxInFlight.Load(); f > m && !maxInFlight.CompareAndSwap(m, f); m = maxInFlight.Load() {
			}
			defer inFlight.Add(-1)
			t0 := time.Now()
			if err := push(ctx, hc, s, devs[i], bodies[i], per); err != nil {
				errs[i] = fmt.Errorf("device %d: %w", i, err)
				return
			}
			t1 := time.Now()
			pg, _, _, err := pr.pull(ctx, s, devs[i].Token, since, limit)
			if err != nil {
				errs[i] = fmt.Errorf("device %d: %w", i, err)
				return
			}
			t2 := time.Now()
			pulled.Add(int64(pg.Records))
			pushes[i], pulls[i], total[i] = t1.Sub(t0), t2.Sub(t1), t2.Sub(t0)
		})
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	wall := time.Since(start)
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if failed > 0 {
		return nil, fmt.Errorf("%d of %d devices failed to sync; the first: %w", failed, n, first)
	}
	r.MaxInFlight = int(maxInFlight.Load())
	r.RecordsPushed = n * per
	r.RecordsPulled = pulled.Load()
	r.WireBytes = wc.read.Load()
	r.Seconds = wall.Seconds()
	r.P50Ms, r.P99Ms, r.MaxMs = ms(percentile(total, 50)), ms(percentile(total, 99)), ms(percentile(total, 100))
	r.PushP50Ms, r.PushP99Ms = ms(percentile(pushes, 50)), ms(percentile(pushes, 99))
	r.PullP50Ms, r.PullP99Ms = ms(percentile(pulls, 50)), ms(percentile(pulls, 99))
	return r, nil
}

// readAll reads an answer's body into a buffer of its Content-Length when
// the server sent one, instead of growing one.
func readAll(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= 64<<20 {
		b := make([]byte, n)
		_, err := io.ReadFull(resp.Body, b)
		return b, err
	}
	return io.ReadAll(resp.Body)
}
