package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// A device persists its batch before sending it; the server applies it but
// the answer is lost and the process dies. Reopened from the same file, the
// device resends the same batch id, the server answers the same, nothing is
// applied twice, and the dirty flags clear.
func TestCrashMidSyncResendsSameBatch(t *testing.T) {
	srv := MustStartServer(t)
	dev, tok := srv.NewDevice(t, "tablet")
	path := filepath.Join(t.TempDir(), "device.db")

	var (
		mu         sync.Mutex
		c          *Client
		sentBatch  string
		lostAnswer sp.PushResponse
		persisted  bool
	)
	// The first push reaches the server; its answer never comes back.
	losing := transportFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Path != routePush {
			return http.DefaultTransport.RoundTrip(req)
		}
		_, body, err := readRequestBody(req)
		if err != nil {
			t.Errorf("read push body: %v", err)
		}
		var pr sp.PushRequest
		if err := json.Unmarshal(body, &pr); err != nil {
			t.Errorf("push body: %v", err)
		}
		mu.Lock()
		sentBatch = pr.Batch
		pb, err := c.st.pending()
		persisted = err == nil && pb != nil && pb.ID == pr.Batch
		mu.Unlock()
		status, answer, err := forwardAndRead(http.DefaultTransport, req)
		if err != nil || status != http.StatusOK {
			t.Errorf("first push: status %d, %v", status, err)
		}
		if err := json.Unmarshal(answer, &lostAnswer); err != nil {
			t.Errorf("first answer: %v", err)
		}
		return nil, errLostAnswer
	})
	opt := Options{ServerURL: srv.URL, Token: tok, Device: dev, MaxRetries: -1, Encoding: EncodingZstd, HTTPClient: &http.Client{Transport: losing}}
	mu.Lock()
	c = MustOpenClient(t, path, opt)
	mu.Unlock()
	ids := []string{NewID(), NewID(), NewID()}
	for i, id := range ids {
		mustSave(t, c, id, "assessment", testScope, map[string]any{"household_size": i + 2, "village": "Tighmert"})
	}
	_, err := c.Sync(context.Background())
	if !errors.Is(err, ErrGaveUp) || !errors.Is(err, errLostAnswer) {
		t.Fatalf("sync with a lost answer: %v, want ErrGaveUp wrapping the transport error", err)
	}
	if !persisted {
		t.Errorf("the batch was not persisted before it was sent")
	}
	if err := c.Close(); err != nil { // the process dies
		t.Fatal(err)
	}

	// Restart from the same file, on a network that works; record what
	// is pushed and what the server answers.
	var resent []string
	var answers []sp.PushResponse
	recording := transportFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Path != routePush {
			return http.DefaultTransport.RoundTrip(req)
		}
		_, body, _ := readRequestBody(req)
		var pr sp.PushRequest
		_ = json.Unmarshal(body, &pr)
		resent = append(resent, pr.Batch)
		status, answer, err := forwardAndRead(http.DefaultTransport, req)
		if err != nil {
			return nil, err
		}
		var ans sp.PushResponse
		_ = json.Unmarshal(answer, &ans)
		answers = append(answers, ans)
		return newResponse(req, status, answer), nil
	})
	opt.HTTPClient = &http.Client{Transport: recording}
	opt.MaxRetries = 0
	c2 := MustOpenClient(t, path, opt)
	if n, pending, err := c2.Dirty(); err != nil || n != 3 || !pending {
		t.Fatalf("after restart: %d dirty, pending %v, %v; want 3 dirty and a pending batch", n, pending, err)
	}
	rep := mustSync(t, c2)

	if len(resent) != 1 || resent[0] != sentBatch {
		t.Errorf("pushes after restart: %v, want exactly the lost batch %s", resent, sentBatch)
	}
	if len(answers) != 1 || !reflect.DeepEqual(answers[0], lostAnswer) {
		t.Errorf("the server answered the resent batch differently:\n first %+v\n again %+v", lostAnswer, answers)
	}
	if rep.Applied != 3 || rep.Batches != 1 {
		t.Errorf("report %+v, want the same answer as the lost one (3 applied, 1 batch)", rep)
	}
	for _, res := range lostAnswer.Results {
		if res.Status != sp.StatusApplied {
			t.Errorf("lost answer for %s: %s", res.ID, res.Status)
		}
	}
	for _, id := range ids {
		h := srv.History(t, "", id)
		if len(h) != 1 || h[0].Kind != "push" || h[0].Batch != sentBatch {
			t.Errorf("history of %s: %+v, want one push of batch %s", id, h, sentBatch)
		}
	}
	server, _ := srv.PullAll(t)
	assertEqualsServer(t, c2, server)
}
