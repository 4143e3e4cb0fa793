package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store"
	"github.com/fieldsync/fieldsync/server"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

const testScope = "guelmim-oued-noun"

// testServer is the real server on loopback over a real store in a
// temporary directory.
type testServer struct {
	URL   string
	Store *store.Store
	Auth  *auth.Service
	Admin string // an admin's token
}

// MustStartServer starts a server; a cleanup stops it and closes its store.
func MustStartServer(tb testing.TB) *testServer {
	tb.Helper()
	st, err := store.Open(tb.TempDir(), store.Options{})
	if err != nil {
		tb.Fatalf("open server store: %v", err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("close server store: %v", err)
		}
	})
	accounts := auth.NewService(st, nil)
	hs := httptest.NewServer(server.New(server.Options{Records: records.NewService(st, records.Options{}), Auth: accounts}).Handler())
	tb.Cleanup(hs.Close)
	_, admin, err := accounts.Create(context.Background(), auth.RoleAdmin, "admin", nil)
	if err != nil {
		tb.Fatalf("create admin: %v", err)
	}
	return &testServer{URL: hs.URL, Store: st, Auth: accounts, Admin: admin}
}

// NewDevice enrols a device in testScope and returns its id and token.
func (s *testServer) NewDevice(tb testing.TB, label string) (string, string) {
	tb.Helper()
	a, tok, err := s.Auth.Create(context.Background(), auth.RoleDevice, label, []string{testScope})
	if err != nil {
		tb.Fatalf("create device: %v", err)
	}
	return a.ID, tok
}

// NewUser creates a user of a role in testScope and returns its token.
func (s *testServer) NewUser(tb testing.TB, role auth.Role, name string) string {
	tb.Helper()
	_, tok, err := s.Auth.Create(context.Background(), role, name, []string{testScope})
	if err != nil {
		tb.Fatalf("create %s: %v", role, err)
	}
	return tok
}

// call sends a request with the admin's token (or tok) and decodes a 2xx
// answer into out; it returns the status.
func (s *testServer) call(tb testing.TB, tok, method, path string, in, out any) int {
	tb.Helper()
	if tok == "" {
		tok = s.Admin
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			tb.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read: %v", method, path, err)
	}
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: decode: %v\n%s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// PullAll pulls every record from the start with the admin's token.
func (s *testServer) PullAll(tb testing.TB) (map[string]*sp.Record, string) {
	tb.Helper()
	out := map[string]*sp.Record{}
	cursor := ""
	for {
		var resp sp.PullResponse
		path := "/v1/sync/pull?limit=1000"
		if cursor != "" {
			path += "&since=" + cursor
		}
		if st := s.call(tb, "", http.MethodGet, path, nil, &resp); st != http.StatusOK {
			tb.Fatalf("admin pull: status %d", st)
		}
		for _, p := range resp.Records {
			out[p.ID] = sp.FromState(p.State)
		}
		cursor = resp.Cursor
		if !resp.More {
			return out, cursor
		}
	}
}

// historyEntry is one change of GET /v1/records/{id}/history.
type historyEntry struct {
	Seq      uint64                      `json:"seq"`
	Actor    string                      `json:"actor"`
	Batch    string                      `json:"batch"`
	Kind     string                      `json:"kind"`
	Fields   []string                    `json:"fields"`
	Values   map[string]json.RawMessage  `json:"values"`
	Siblings map[string][]sp.SiblingView `json:"siblings"`
}

// History returns a record's history, with a supervisor's token when given.
func (s *testServer) History(tb testing.TB, tok, id string) []historyEntry {
	tb.Helper()
	var resp struct {
		History []historyEntry `json:"history"`
	}
	if st := s.call(tb, tok, http.MethodGet, "/v1/records/"+id+"/history", nil, &resp); st != http.StatusOK {
		tb.Fatalf("history of %s: status %d", id, st)
	}
	return resp.History
}

// MustOpenClient opens a device client on the file at path (one in a new
// temporary directory when path is empty), with a 1 ms backoff unless
// opt says otherwise. A cleanup closes it.
func MustOpenClient(tb testing.TB, path string, opt Options) *Client {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "device.db")
	}
	if opt.BackoffBase == 0 {
		opt.BackoffBase = time.Millisecond
	}
	c, err := Open(path, opt)
	if err != nil {
		tb.Fatalf("open client: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() }) // closing twice is harmless
	return c
}

// mustSave saves or fails the test.
func mustSave(tb testing.TB, c *Client, id, form, scope string, fields map[string]any) {
	tb.Helper()
	if err := c.Save(context.Background(), id, form, scope, fields); err != nil {
		tb.Fatalf("save %s: %v", id, err)
	}
}

// mustSync syncs or fails the test.
func mustSync(tb testing.TB, c *Client) SyncReport {
	tb.Helper()
	rep, err := c.Sync(context.Background())
	if err != nil {
		tb.Fatalf("sync device %s: %v", c.Device(), err)
	}
	if len(rep.Rejected) > 0 {
		tb.Errorf("sync device %s: rejected items: %+v", c.Device(), rep.Rejected)
	}
	return rep
}

// assertEqualsServer checks that the device holds exactly the server's
// records, each equal (clock and siblings) to the server's state.
func assertEqualsServer(tb testing.TB, c *Client, srv map[string]*sp.Record) {
	tb.Helper()
	list, err := c.List()
	if err != nil {
		tb.Fatal(err)
	}
	if len(list) != len(srv) {
		tb.Errorf("device %s holds %d records, the server %d", c.Device(), len(list), len(srv))
	}
	for id, want := range srv {
		got, _ := c.Get(id)
		if got == nil {
			tb.Errorf("device %s lacks record %s", c.Device(), id)
			continue
		}
		if !got.Equal(want) {
			tb.Errorf("device %s, record %s differs from the server's:\n device %s\n server %s", c.Device(), id, stateJSON(got), stateJSON(want))
		}
	}
	n, pending, err := c.Dirty()
	if err != nil {
		tb.Fatal(err)
	}
	if n != 0 || pending {
		tb.Errorf("device %s: %d dirty records, pending batch %v after quiescence", c.Device(), n, pending)
	}
}

func stateJSON(r *sp.Record) string {
	b, _ := json.Marshal(r.State())
	return string(b)
}

// readRequestBody reads and restores a request's body, returning it
// inflated per its Content-Encoding.
func readRequestBody(req *http.Request) ([]byte, []byte, error) {
	if req.Body == nil {
		return nil, nil, nil
	}
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, err
	}
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(raw))
	fake := &http.Response{Header: http.Header{"Content-Encoding": req.Header.Values("Content-Encoding")}, Body: io.NopCloser(bytes.NewReader(raw))}
	inflated, err := inflate(fake)
	return raw, inflated, err
}

// transportFunc adapts a function to http.RoundTripper.
type transportFunc func(*http.Request) (*http.Response, error)

func (f transportFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// errLostAnswer is what a transport returns for an answer it threw away.
var errLostAnswer = errors.New("test: connection lost before the answer")

// forwardAndRead sends req on, reads the whole answer and returns its
// status and inflated body (the caller may then lose it).
func forwardAndRead(next http.RoundTripper, req *http.Request) (int, []byte, error) {
	resp, err := next.RoundTrip(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := inflate(resp)
	return resp.StatusCode, b, err
}

// newResponse makes an uncompressed answer for req.
func newResponse(req *http.Request, status int, body []byte) *http.Response {
	return &http.Response{
		Status: http.StatusText(status), StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: req,
	}
}
