package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// failingNet answers the first n pushes itself with a status and headers,
// without reaching the server, then forwards; it records every push's
// batch id and the time it was sent.
type failingNet struct {
	mu      sync.Mutex
	n       int // pushes still to fail; negative: all
	status  int
	headers []http.Header // per failed push, in order (the last repeats)
	batches []string
	times   []time.Time
}

func (f *failingNet) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path != routePush {
		return http.DefaultTransport.RoundTrip(req)
	}
	_, body, err := readRequestBody(req)
	if err != nil {
		return nil, err
	}
	var pr sp.PushRequest
	_ = json.Unmarshal(body, &pr)
	f.mu.Lock()
	f.batches = append(f.batches, pr.Batch)
	f.times = append(f.times, time.Now())
	fail := f.n != 0
	var h http.Header
	if fail {
		if f.n > 0 {
			f.n--
		}
		if len(f.headers) > 0 {
			h = f.headers[0]
			if len(f.headers) > 1 {
				f.headers = f.headers[1:]
			}
		}
	}
	status := f.status
	f.mu.Unlock()
	if !fail {
		return http.DefaultTransport.RoundTrip(req)
	}
	r := newResponse(req, status, []byte(`{"error":{"code":"unavailable","message":"test: busy"}}`))
	for k, v := range h {
		r.Header[k] = v
	}
	return r, nil
}

func (f *failingNet) sent() ([]string, []time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches), slices.Clone(f.times)
}

// A push answered 503 twice goes through on the third attempt, with the
// same batch id each time.
func TestSyncRetries503(t *testing.T) {
	srv := MustStartServer(t)
	dev, tok := srv.NewDevice(t, "tablet")
	fn := &failingNet{n: 2, status: http.StatusServiceUnavailable}
	c := MustOpenClient(t, "", Options{ServerURL: srv.URL, Token: tok, Device: dev, MaxRetries: 3, BackoffBase: 5 * time.Millisecond, HTTPClient: &http.Client{Transport: fn}})
	id := NewID()
	mustSave(t, c, id, "assessment", testScope, map[string]any{"household_size": 3})
	rep := mustSync(t, c)
	if rep.Applied != 1 {
		t.Errorf("report %+v, want 1 applied", rep)
	}
	batches, _ := fn.sent()
	if len(batches) != 3 || batches[0] != batches[1] || batches[1] != batches[2] {
		t.Errorf("pushes %v: want 3 attempts of one batch", batches)
	}
	server, _ := srv.PullAll(t)
	assertEqualsServer(t, c, server)
}

// Retry-After is honoured: a 429 asking for 1 second makes the client wait
// at least that long, although its own backoff would be milliseconds.
func TestSyncHonoursRetryAfter(t *testing.T) {
	srv := MustStartServer(t)
	dev, tok := srv.NewDevice(t, "tablet")
	fn := &failingNet{n: 2, status: http.StatusTooManyRequests, headers: []http.Header{{"Retry-After": {"1"}}, {"Retry-After": {"0.2"}}}}
	c := MustOpenClient(t, "", Options{ServerURL: srv.URL, Token: tok, Device: dev, MaxRetries: 3, BackoffBase: time.Millisecond, HTTPClient: &http.Client{Transport: fn}})
	mustSave(t, c, NewID(), "assessment", testScope, map[string]any{"household_size": 3})
	mustSync(t, c)
	_, times := fn.sent()
	if len(times) != 3 {
		t.Fatalf("%d push attempts, want 3", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("waited %v after Retry-After: 1", gap)
	}
	if gap := times[2].Sub(times[1]); gap < 200*time.Millisecond {
		t.Errorf("waited %v after Retry-After: 0.2", gap)
	}
}

// Backoff without Retry-After is exponential with full jitter: each wait is
// at most BackoffBase·2^attempt, capped at MaxBackoff. After MaxRetries the
// client gives up with ErrGaveUp and keeps the batch, which the next Sync
// resends with the same id.
func TestSyncGivesUpAndKeepsBatch(t *testing.T) {
	srv := MustStartServer(t)
	dev, tok := srv.NewDevice(t, "tablet")
	fn := &failingNet{n: -1, status: http.StatusBadGateway}
	c := MustOpenClient(t, "", Options{ServerURL: srv.URL, Token: tok, Device: dev, MaxRetries: 5,
		BackoffBase: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, HTTPClient: &http.Client{Transport: fn}})
	var waits []time.Duration
	c.sleep = func(_ <-chan struct{}, d time.Duration) bool { waits = append(waits, d); return true }
	mustSave(t, c, NewID(), "assessment", testScope, map[string]any{"household_size": 3})
	_, err := c.Sync(context.Background())
	var re *RetryError
	if !errors.Is(err, ErrGaveUp) || !errors.As(err, &re) || re.Attempts != 6 || sp.ErrorCode(err) != sp.CodeUnavailable {
		t.Fatalf("sync against a 502 server: %v, want ErrGaveUp after 6 attempts", err)
	}
	t.Logf("error: %v", err)
	for i, w := range waits {
		ceiling := min(40*time.Millisecond, 10*time.Millisecond<<i)
		if w < 0 || w > ceiling {
			t.Errorf("wait %d = %v, want within [0, %v]", i, w, ceiling)
		}
	}
	if len(waits) != 5 {
		t.Errorf("%d waits, want 5", len(waits))
	}
	pb, err := c.st.pending()
	if err != nil || pb == nil {
		t.Fatalf("no pending batch after giving up: %v", err)
	}

	fn.mu.Lock()
	fn.n = 0
	fn.mu.Unlock()
	rep := mustSync(t, c)
	batches, _ := fn.sent()
	if rep.Applied != 1 || batches[len(batches)-1] != pb.ID || slices.ContainsFunc(batches, func(b string) bool { return b != pb.ID }) {
		t.Errorf("after healing: %+v, batches %v; want batch %s applied", rep, batches, pb.ID)
	}
}

// A 4xx other than 429 is not retried: a revoked token gets a clear error
// at once.
func TestSyncDoesNotRetry4xx(t *testing.T) {
	srv := MustStartServer(t)
	dev, tok := srv.NewDevice(t, "tablet")
	fn := &failingNet{}
	c := MustOpenClient(t, "", Options{ServerURL: srv.URL, Token: tok, Device: dev, HTTPClient: &http.Client{Transport: fn}})
	mustSave(t, c, NewID(), "assessment", testScope, map[string]any{"household_size": 3})
	if err := srv.Auth.Revoke(context.Background(), dev); err != nil {
		t.Fatal(err)
	}
	_, err := c.Sync(context.Background())
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized || sp.ErrorCode(err) != sp.CodeUnauthorized {
		t.Fatalf("sync with a revoked token: %v, want a 401 StatusError", err)
	}
	t.Logf("error: %v", err)
	if batches, _ := fn.sent(); len(batches) != 1 {
		t.Errorf("%d push attempts, want 1", len(batches))
	}
}

// A 409 batch_reused (a pending batch id the server has seen with other
// records) makes the client drop that id and push the records again under
// a new one.
func TestSyncRebuildsReusedBatch(t *testing.T) {
	srv := MustStartServer(t)
	dev, tok := srv.NewDevice(t, "tablet")
	fn := &failingNet{}
	c := MustOpenClient(t, "", Options{ServerURL: srv.URL, Token: tok, Device: dev, HTTPClient: &http.Client{Transport: fn}})
	id := NewID()
	mustSave(t, c, id, "assessment", testScope, map[string]any{"household_size": 3})
	mustSync(t, c)
	used, _ := fn.sent()

	// A buggy earlier version persisted its next batch under a used id.
	mustSave(t, c, id, "", "", map[string]any{"household_size": 4})
	reused := used[0]
	pb, err := c.st.buildPending(reused, 10, nil, c.buildItem, func(items []json.RawMessage) (json.RawMessage, error) {
		return json.Marshal(sp.PushRequest{Device: dev, Batch: reused, Records: items})
	})
	if err != nil || pb == nil {
		t.Fatalf("build pending: %v", err)
	}
	rep := mustSync(t, c)
	batches, _ := fn.sent()
	if rep.Applied != 1 || len(batches) != 3 || batches[1] != reused || batches[2] == reused {
		t.Errorf("report %+v, batches %v: want the reused id refused, then a new one applied", rep, batches)
	}
	server, _ := srv.PullAll(t)
	assertEqualsServer(t, c, server)
	if _, a := c.Get(id); string(a.Visible["household_size"]) != "4" {
		t.Errorf("household_size = %s", a.Visible["household_size"])
	}
}
