// Package e2e holds black-box tests that build the real fieldsync binary,
// run it on loopback with a temporary data directory, and speak the wire
// contract of PROTOCOL.md to it over HTTP.
package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// binPath is the fieldsync binary TestMain builds once for the package.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	dir, err := os.MkdirTemp("", "fieldsync-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "fieldsync")
	build := exec.Command("go", "build", "-o", binPath, "github.com/fieldsync/fieldsync/server/cmd/fieldsync")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the server: %v\n%s", err, out)
		return 2
	}
	return m.Run()
}

// moduleRoot finds the directory of the module's go.mod: `go env GOMOD`,
// else walking up from the working directory.
func moduleRoot() (string, error) {
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if p := strings.TrimSpace(string(out)); p != "" && p != os.DevNull {
			return filepath.Dir(p), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// ---------------------------------------------------------------------------
// The server process.

// logBuffer collects the server's output; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is one run of the binary.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's result, set before done closes
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Server is the real binary serving on 127.0.0.1 with a data directory.
type Server struct {
	DataDir    string
	AdminToken string

	mu     sync.Mutex
	port   int
	proc   *proc
	log    *logBuffer
	client *http.Client
	args   []string // extra flags for serve
}

// StartServer starts the binary on a free loopback port over dataDir (created
// by the server if missing), with a random first-admin token, and waits for
// /healthz. A cleanup stops it with SIGTERM.
func StartServer(t testing.TB, dataDir string) *Server {
	t.Helper()
	return StartServerArgs(t, dataDir)
}

// StartServerArgs is StartServer with extra flags for `fieldsync serve`.
func StartServerArgs(t testing.TB, dataDir string, args ...string) *Server {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.Proxy = nil
	s := &Server{
		DataDir:    dataDir,
		AdminToken: "e2e-admin-" + randomHex(24),
		log:        &logBuffer{},
		client:     &http.Client{Transport: tr, Timeout: 60 * time.Second},
		args:       args,
	}
	t.Cleanup(func() {
		s.stop()
		tr.CloseIdleConnections()
		if t.Failed() {
			t.Logf("server log (%s):\n%s", dataDir, tail(s.Log(), 8000))
		}
	})
	// A port found free may be taken before the server binds it: try again
	// on another.
	var err error
	for range 3 {
		if err = s.start(freePort(t)); err == nil {
			return s
		}
	}
	t.Fatalf("starting the server: %v\nlog:\n%s", err, tail(s.Log(), 8000))
	return nil
}

// URL is the server's base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://127.0.0.1:" + strconv.Itoa(s.port)
}

// Log returns everything the server wrote to stdout and stderr so far, over
// all its runs.
func (s *Server) Log() string { return s.log.String() }

func (s *Server) start(port int) error {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	fmt.Fprintf(s.log, "---- e2e: starting on %s\n", addr)
	cmd := exec.Command(binPath, append([]string{"serve", "--addr", addr, "--data", s.DataDir}, s.args...)...)
	cmd.Env = append(os.Environ(), "FIELDSYNC_ADMIN_TOKEN="+s.AdminToken)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.port, s.proc = port, p
	s.mu.Unlock()

	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p.exited() {
			return fmt.Errorf("the server exited before answering /healthz: %v", p.err)
		}
		resp, err := hc.Get("http://" + addr + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("no 200 from /healthz within 10 s (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond) // the health poll
	}
}

func (s *Server) current() *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// stop sends SIGTERM and waits (SIGKILL after 15 s). It returns the
// process's exit error, nil for a clean exit or when nothing runs.
func (s *Server) stop() error {
	p := s.current()
	if p == nil || p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		s.client.CloseIdleConnections()
		return p.err
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		s.client.CloseIdleConnections()
		return fmt.Errorf("did not stop within 15 s of SIGTERM")
	}
}

func (s *Server) kill() {
	p := s.current()
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	s.client.CloseIdleConnections()
}

// Stop stops the server with SIGTERM and requires a clean exit (PROTOCOL.md
// §8: it finishes the requests in flight and closes the database).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("stopping the server with SIGTERM: %v", err)
	}
}

// Kill9 kills the server with SIGKILL and waits for it to die.
func (s *Server) Kill9() { s.kill() }

// Restart starts the server again over the same data directory (stopping it
// first with SIGTERM if it still runs), on the same port if it is free,
// else on a new one.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("stopping the server before a restart: %v", err)
	}
	s.mu.Lock()
	port := s.port
	s.mu.Unlock()
	if err := s.start(port); err != nil {
		if err := s.start(freePort(t)); err != nil {
			t.Fatalf("restarting the server: %v\nlog:\n%s", err, tail(s.Log(), 8000))
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// RunCLI runs the binary with args and returns its combined output and
// exit error.
func RunCLI(args ...string) (string, error) {
	out, err := exec.Command(binPath, args...).CombinedOutput()
	return string(out), err
}

// ---------------------------------------------------------------------------
// The HTTP client.

// do sends one request. body may be nil. It returns the response (body read
// and closed) and its body.
func (s *Server) do(method, path, token string, body []byte, headers map[string]string) (*http.Response, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL()+path, r)
	if err != nil {
		return nil, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return resp, b, nil
}

// Do sends one request and fails the test on a transport error.
func (s *Server) Do(t testing.TB, method, path, token string, body []byte, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := s.do(method, path, token, body, headers)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, b
}

// jsonBody marshals v, or passes []byte and string through.
func jsonBody(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case string:
		return []byte(b), nil
	case json.RawMessage:
		return b, nil
	}
	return json.Marshal(v)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// errorOf decodes an error answer; nil when the body is not one.
func errorOf(body []byte) *syncproto.Error {
	var eb syncproto.ErrorBody
	if json.Unmarshal(body, &eb) != nil {
		return nil
	}
	return eb.Error
}

// wantError requires an error answer with the given status and code.
func wantError(t testing.TB, what string, resp *http.Response, body []byte, status int, code syncproto.Code) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d; body %s", what, resp.StatusCode, status, cut(body))
		return
	}
	e := errorOf(body)
	if e == nil || e.Code != code || e.Message == "" {
		t.Errorf("%s: body %s, want {\"error\": {\"code\": %q, \"message\": ...}}", what, cut(body), code)
	}
}

func (s *Server) adminPost(t testing.TB, path string, v any) map[string]any {
	t.Helper()
	resp, b := s.Do(t, http.MethodPost, path, s.AdminToken, mustJSON(t, v), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: status %d, want 201; body %s", path, resp.StatusCode, cut(b))
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("POST %s: %v; body %s", path, err, cut(b))
	}
	return out
}

// Enroll enrolls a device through the admin API and returns its id and token.
func (s *Server) Enroll(t testing.TB, label string, scopes ...string) (deviceID, token string) {
	t.Helper()
	out := s.adminPost(t, "/v1/admin/devices", map[string]any{"label": label, "scopes": scopes})
	deviceID, _ = out["device"].(string)
	token, _ = out["token"].(string)
	if !syncproto.IsUUID(deviceID) || token == "" {
		t.Fatalf("enroll: answer %v lacks a device uuid or a token", out)
	}
	return deviceID, token
}

// CreateUser creates a supervisor, hq or admin account and returns its id
// and token.
func (s *Server) CreateUser(t testing.TB, name, role string, scopes ...string) (id, token string) {
	t.Helper()
	if scopes == nil {
		scopes = []string{}
	}
	out := s.adminPost(t, "/v1/admin/users", map[string]any{"name": name, "role": role, "scopes": scopes})
	id, _ = out["user"].(string)
	token, _ = out["token"].(string)
	if !syncproto.IsUUID(id) || token == "" {
		t.Fatalf("create user: answer %v lacks a user uuid or a token", out)
	}
	return id, token
}

func (s *Server) push(token string, body any) (int, syncproto.PushResponse, *syncproto.Error, error) {
	var pr syncproto.PushResponse
	b, err := jsonBody(body)
	if err != nil {
		return 0, pr, nil, err
	}
	resp, rb, err := s.do(http.MethodPost, "/v1/sync/push", token, b, nil)
	if err != nil {
		return 0, pr, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, pr, errorOf(rb), nil
	}
	if err := json.Unmarshal(rb, &pr); err != nil {
		return resp.StatusCode, pr, nil, fmt.Errorf("push answer: %v; body %s", err, cut(rb))
	}
	return resp.StatusCode, pr, nil, nil
}

// Push posts a push body (any JSON-marshalable value, or raw bytes) and
// returns the status and the decoded answer, or the error body.
func (s *Server) Push(t testing.TB, token string, body any) (int, syncproto.PushResponse, *syncproto.Error) {
	t.Helper()
	st, pr, e, err := s.push(token, body)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return st, pr, e
}

func (s *Server) pull(token, since string, limit int) (int, syncproto.PullResponse, *syncproto.Error, error) {
	var pr syncproto.PullResponse
	path := "/v1/sync/pull?limit=" + strconv.Itoa(limit)
	if since != "" {
		path += "&since=" + since
	}
	resp, b, err := s.do(http.MethodGet, path, token, nil, nil)
	if err != nil {
		return 0, pr, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, pr, errorOf(b), nil
	}
	if err := json.Unmarshal(b, &pr); err != nil {
		return resp.StatusCode, pr, nil, fmt.Errorf("pull answer: %v; body %s", err, cut(b))
	}
	return resp.StatusCode, pr, nil, nil
}

// Pull gets one page of the feed after since (empty: from the start).
func (s *Server) Pull(t testing.TB, token, since string, limit int) (int, syncproto.PullResponse) {
	t.Helper()
	st, pr, e, err := s.pull(token, since, limit)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if st != http.StatusOK {
		t.Logf("pull: status %d, error %+v", st, e)
	}
	return st, pr
}

// PullAll pages through the whole feed from the start and returns every
// record pulled, in order, and the last cursor.
func (s *Server) PullAll(t testing.TB, token string) ([]syncproto.PulledRecord, string) {
	t.Helper()
	var out []syncproto.PulledRecord
	cursor := ""
	for range 10_000 {
		st, pr := s.Pull(t, token, cursor, syncproto.MaxPull)
		if st != http.StatusOK {
			t.Fatalf("pull all: status %d", st)
		}
		out = append(out, pr.Records...)
		if pr.Cursor == "" {
			t.Fatalf("pull all: empty cursor")
		}
		cursor = pr.Cursor
		if !pr.More {
			return out, cursor
		}
	}
	t.Fatalf("pull all: more = true after 10,000 pages")
	return nil, ""
}

// RecordView is GET /v1/records/{id} (PROTOCOL.md §4).
type RecordView struct {
	Record    syncproto.State                    `json:"record"`
	Seq       uint64                             `json:"seq"`
	Values    map[string]json.RawMessage         `json:"values"`
	Conflicts map[string][]syncproto.SiblingView `json:"conflicts"`
	Deleted   bool                               `json:"deleted"`
	Review    *struct {
		State string `json:"state"`
		Note  string `json:"note"`
		By    string `json:"by"`
	} `json:"review"`
}

// HistoryEntry is one entry of GET /v1/records/{id}/history (PROTOCOL.md §4).
type HistoryEntry struct {
	Seq              uint64                     `json:"seq"`
	ReceivedAt       string                     `json:"received_at"`
	Actor            string                     `json:"actor"`
	Batch            string                     `json:"batch"`
	Kind             string                     `json:"kind"`
	Fields           []string                   `json:"fields"`
	Values           map[string]json.RawMessage `json:"values"`
	MergedConcurrent *bool                      `json:"merged_concurrent"`
	Note             string                     `json:"note"`
}

// String shows an entry as JSON, for failure messages.
func (h HistoryEntry) String() string {
	b, _ := json.Marshal(h)
	return string(b)
}

// GetRecord gets a record's supervisor view; the status, and the view when 200.
func (s *Server) GetRecord(t testing.TB, token, id string) (int, RecordView) {
	t.Helper()
	var v RecordView
	resp, b := s.Do(t, http.MethodGet, "/v1/records/"+id, token, nil, nil)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("record view: %v; body %s", err, cut(b))
		}
	}
	return resp.StatusCode, v
}

// History gets a record's history; the status, and the entries when 200.
func (s *Server) History(t testing.TB, token, id string) (int, []HistoryEntry) {
	t.Helper()
	var v struct {
		History []HistoryEntry `json:"history"`
	}
	resp, b := s.Do(t, http.MethodGet, "/v1/records/"+id+"/history", token, nil, nil)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("history: %v; body %s", err, cut(b))
		}
		if v.History == nil {
			t.Fatalf("history: no \"history\" array in %s", cut(b))
		}
	}
	return resp.StatusCode, v.History
}

// QuarantineItem is one entry of GET /v1/admin/quarantine (PROTOCOL.md §6).
type QuarantineItem struct {
	ID         string           `json:"id"`
	Record     string           `json:"record"`
	Device     string           `json:"device"`
	ReceivedAt string           `json:"received_at"`
	Error      *syncproto.Error `json:"error"`
	Item       json.RawMessage  `json:"item"`
	// ItemText is the item as sent when it nests too deep to be kept as
	// JSON (see docs/protocol-notes.md).
	ItemText string `json:"item_text"`
}

// Sent returns the item as the device sent it, from Item or ItemText.
func (q QuarantineItem) Sent() []byte {
	if q.ItemText != "" {
		return []byte(q.ItemText)
	}
	return q.Item
}

// Quarantine lists the quarantine with the admin token.
func (s *Server) Quarantine(t testing.TB) []QuarantineItem {
	t.Helper()
	resp, b := s.Do(t, http.MethodGet, "/v1/admin/quarantine", s.AdminToken, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("quarantine: status %d; body %s", resp.StatusCode, cut(b))
	}
	var v struct {
		Items []QuarantineItem `json:"items"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Items == nil {
		t.Fatalf("quarantine: %v; body %s", err, cut(b))
	}
	return v.Items
}

// ---------------------------------------------------------------------------
// The device simulator.

// Device is a simulated tablet: it keeps its own copy of each record, makes
// writes as PROTOCOL.md §1 says, pushes the fields it changed since its last
// acknowledged push (§2), and merges what it pulls with syncproto.Join.
// A Device is used by one goroutine at a time.
type Device struct {
	srv    *Server
	ID     string
	Token  string
	Scope  string
	Recs   map[string]*syncproto.Record
	dirty  map[string]map[string]bool // record id → fields changed since the last acknowledged push
	Cursor string
	// Acked holds, for each record, the seq of its last acknowledged push.
	Acked  map[string]uint64
	lastAt int64
}

// NewDevice enrolls a device in scope (and any extra scopes); its records
// are created in scope.
func (s *Server) NewDevice(t testing.TB, label, scope string, extra ...string) *Device {
	t.Helper()
	id, token := s.Enroll(t, label, append([]string{scope}, extra...)...)
	return &Device{srv: s, ID: id, Token: token, Scope: scope,
		Recs: map[string]*syncproto.Record{}, dirty: map[string]map[string]bool{}, Acked: map[string]uint64{}}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func (d *Device) now() int64 {
	at := time.Now().UnixMilli()
	if at <= d.lastAt {
		at = d.lastAt + 1
	}
	d.lastAt = at
	return at
}

// Create makes a new record of form in the device's scope with a first write.
func (d *Device) Create(t testing.TB, form string, fields map[string]any) string {
	t.Helper()
	id := newID()
	d.Recs[id] = &syncproto.Record{ID: id, Form: form, Scope: d.Scope, Clock: syncproto.Clock{}, Fields: map[string][]syncproto.Sibling{}}
	d.Edit(t, id, fields)
	return id
}

func (d *Device) create(form string, fields map[string]any) (string, error) {
	id := newID()
	d.Recs[id] = &syncproto.Record{ID: id, Form: form, Scope: d.Scope, Clock: syncproto.Clock{}, Fields: map[string][]syncproto.Sibling{}}
	_, err := d.edit(id, fields)
	return id, err
}

// Edit saves fields on a record the device holds: its own clock entry + 1,
// n = the new count, at = now. It returns the write's dot.
func (d *Device) Edit(t testing.TB, id string, fields map[string]any) syncproto.Dot {
	t.Helper()
	dot, err := d.edit(id, fields)
	if err != nil {
		t.Fatal(err)
	}
	return dot
}

func (d *Device) edit(id string, fields map[string]any) (syncproto.Dot, error) {
	rec, ok := d.Recs[id]
	if !ok {
		return syncproto.Dot{}, fmt.Errorf("device %s does not hold record %s", d.ID, id)
	}
	dot := syncproto.Dot{By: d.ID, N: rec.Clock[d.ID] + 1}
	clock := rec.Clock.Copy()
	clock[d.ID] = dot.N
	at := d.now()
	w := &syncproto.Record{ID: rec.ID, Form: rec.Form, Scope: rec.Scope, Clock: clock, Fields: map[string][]syncproto.Sibling{}}
	for name, v := range fields {
		raw, err := json.Marshal(v)
		if err != nil {
			return dot, err
		}
		w.Fields[name] = []syncproto.Sibling{{Dot: dot, At: at, Value: raw}}
		if d.dirty[id] == nil {
			d.dirty[id] = map[string]bool{}
		}
		d.dirty[id][name] = true
	}
	// A save has seen every sibling the device holds: merged as a push of
	// the written fields, it replaces them and leaves the other fields.
	d.Recs[id] = syncproto.ApplyPush(rec, w)
	return dot, nil
}

// Item is the push item for a record (PROTOCOL.md §2): the full clock and,
// for each field changed since the last acknowledged push, all its
// siblings. ok is false when there is nothing to carry.
func (d *Device) Item(id string) (syncproto.State, bool) {
	rec := d.Recs[id]
	sub := &syncproto.Record{ID: rec.ID, Form: rec.Form, Scope: rec.Scope, Clock: rec.Clock.Copy(), Fields: map[string][]syncproto.Sibling{}}
	for f := range d.dirty[id] {
		if sibs := rec.Fields[f]; len(sibs) > 0 {
			sub.Fields[f] = sibs
		}
	}
	st := sub.State()
	return st, len(st.Writes) > 0
}

// FullItem is the record's full state, as a resync pushes it.
func (d *Device) FullItem(id string) syncproto.State { return d.Recs[id].State() }

// PushBody is a push of every record with changes, in a new batch.
func (d *Device) PushBody() (map[string]any, []string) {
	var ids []string
	var items []syncproto.State
	for id := range d.dirty {
		if it, ok := d.Item(id); ok {
			ids = append(ids, id)
			items = append(items, it)
		} else {
			delete(d.dirty, id)
		}
	}
	if items == nil {
		items = []syncproto.State{}
	}
	return map[string]any{"device": d.ID, "batch": newID(), "records": items}, ids
}

// PushChanges pushes every record with changes and requires each item to be
// accepted; it clears what was acknowledged and returns the answer.
func (d *Device) PushChanges(t testing.TB) syncproto.PushResponse {
	t.Helper()
	resp, err := d.pushChanges()
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (d *Device) pushChanges() (syncproto.PushResponse, error) {
	body, ids := d.PushBody()
	if len(ids) == 0 {
		return syncproto.PushResponse{}, nil
	}
	st, resp, e, err := d.srv.push(d.Token, body)
	if err != nil {
		return resp, err
	}
	if st != http.StatusOK {
		return resp, fmt.Errorf("device %s push: status %d, error %+v", d.ID, st, e)
	}
	if err := d.Ack(body, resp); err != nil {
		return resp, err
	}
	return resp, nil
}

// Ack checks a push answer against its body and clears the acknowledged
// changes: every item must be applied, unchanged or in conflict.
func (d *Device) Ack(body map[string]any, resp syncproto.PushResponse) error {
	items := body["records"].([]syncproto.State)
	if resp.Batch != body["batch"] {
		return fmt.Errorf("push answer for batch %q, want %q", resp.Batch, body["batch"])
	}
	if len(resp.Results) != len(items) {
		return fmt.Errorf("push of %d items: %d results", len(items), len(resp.Results))
	}
	for i, r := range resp.Results {
		if r.ID != items[i].ID {
			return fmt.Errorf("result %d is for %s, want %s", i, r.ID, items[i].ID)
		}
		switch r.Status {
		case syncproto.StatusApplied, syncproto.StatusUnchanged, syncproto.StatusConflict:
		default:
			return fmt.Errorf("device %s: item %s %s: %+v", d.ID, r.ID, r.Status, r.Error)
		}
		if r.Seq == 0 {
			return fmt.Errorf("item %s %s without a seq", r.ID, r.Status)
		}
		if !r.Clock.Dominates(items[i].Clock) {
			return fmt.Errorf("item %s: answer clock %v does not cover the item's %v", r.ID, r.Clock, items[i].Clock)
		}
		delete(d.dirty, r.ID)
		d.Acked[r.ID] = r.Seq
	}
	return nil
}

// PullMerge pulls everything after the device's cursor and joins each state
// into its copy.
func (d *Device) PullMerge(t testing.TB) {
	t.Helper()
	if err := d.pullMerge(); err != nil {
		t.Fatal(err)
	}
}

func (d *Device) pullMerge() error {
	for range 10_000 {
		st, pr, e, err := d.srv.pull(d.Token, d.Cursor, syncproto.MaxPull)
		if err != nil {
			return err
		}
		if st != http.StatusOK {
			return fmt.Errorf("device %s pull: status %d, error %+v", d.ID, st, e)
		}
		for _, r := range pr.Records {
			d.Merge(r.State)
		}
		d.Cursor = pr.Cursor
		if !pr.More {
			return nil
		}
	}
	return fmt.Errorf("device %s pull: more = true after 10,000 pages", d.ID)
}

// Merge joins a pulled state into the device's copy.
func (d *Device) Merge(s syncproto.State) {
	remote := syncproto.FromState(s)
	if local, ok := d.Recs[s.ID]; ok {
		d.Recs[s.ID] = syncproto.Join(local, remote)
	} else {
		d.Recs[s.ID] = remote
	}
}

// Sync pulls and merges, then pushes the changes.
func (d *Device) sync() error {
	if err := d.pullMerge(); err != nil {
		return err
	}
	_, err := d.pushChanges()
	return err
}

// ---------------------------------------------------------------------------
// Small helpers.

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func cut(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// raw marshals a value for comparisons with syncproto.EqualValues.
func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// stateEqual compares two wire states as the merge sees them.
func stateEqual(a, b syncproto.State) bool {
	return syncproto.FromState(a).Equal(syncproto.FromState(b))
}

// js shows a value as JSON, for failure messages.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// showSibs shows siblings as supervisors' views do, for failure messages.
func showSibs(sibs []syncproto.Sibling) string {
	out := make([]syncproto.SiblingView, len(sibs))
	for i, sb := range sibs {
		out[i] = syncproto.SiblingView{V: sb.Value, By: sb.By, N: sb.N, At: sb.At}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func showState(s syncproto.State) string {
	b, _ := json.Marshal(s)
	return string(b)
}
