package records_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// fakeClock is the server clock the service sees: fixed until a test
// moves it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// server is a record service over a real bbolt store in a temporary
// directory, with accounts from the real account service.
type server struct {
	t     testing.TB
	ctx   context.Context
	st    *store.Store
	svc   *records.Service
	auth  *auth.Service
	clock *fakeClock
	wall  int64 // the tablets' wall clock, unix ms; each write takes the next second
}

// newServer opens a store in t.TempDir; the cleanup checks it, then closes it.
func newServer(t testing.TB) *server {
	t.Helper()
	return newServerDir(t, t.TempDir())
}

func newServerDir(t testing.TB, dir string) *server {
	t.Helper()
	s := openServer(t, dir)
	t.Cleanup(func() { s.close() })
	return s
}

// openServer opens the store in dir; the caller closes it with close.
func openServer(t testing.TB, dir string) *server {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	clock := &fakeClock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	return &server{
		t: t, ctx: context.Background(), st: st, clock: clock,
		svc:  records.NewService(st, records.Options{Now: clock.Now}),
		auth: auth.NewService(st, clock.Now),
		wall: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC).UnixMilli(),
	}
}

// close checks the database, then closes it.
func (s *server) close() {
	s.t.Helper()
	if err := s.st.Check(context.Background()); err != nil {
		s.t.Errorf("store check: %v", err)
	}
	if err := s.st.Close(); err != nil {
		s.t.Errorf("close store: %v", err)
	}
}

// account creates an account.
func (s *server) account(role auth.Role, name string, scopes ...string) *auth.Account {
	s.t.Helper()
	a, _, err := s.auth.Create(s.ctx, role, name, scopes)
	if err != nil {
		s.t.Fatalf("create %s %q: %v", role, name, err)
	}
	return a
}

// lastSeq returns the database's last change sequence number.
func (s *server) lastSeq() uint64 {
	s.t.Helper()
	var n uint64
	if err := s.st.View(s.ctx, func(tx records.ReadTx) error { n = tx.Position().LastSeq; return nil }); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// get returns a record's view as the caller sees it, failing on error.
func (s *server) get(caller *auth.Account, id string) *records.View {
	s.t.Helper()
	v, err := s.svc.Get(s.ctx, caller, id)
	if err != nil {
		s.t.Fatalf("get %s: %v", id, err)
	}
	return v
}

func (s *server) history(caller *auth.Account, id string) []records.HistoryEntry {
	s.t.Helper()
	h, err := s.svc.History(s.ctx, caller, id)
	if err != nil {
		s.t.Fatalf("history %s: %v", id, err)
	}
	return h
}

// conflicts lists the conflict queue, failing on error.
func (s *server) conflicts(caller *auth.Account, q records.ConflictQuery) *records.ConflictPage {
	s.t.Helper()
	if q.Limit == 0 {
		q.Limit = 100
	}
	p, err := s.svc.Conflicts(s.ctx, caller, q)
	if err != nil {
		s.t.Fatalf("conflicts: %v", err)
	}
	return p
}

func newUUID(tb testing.TB) string {
	tb.Helper()
	u, err := uuid.NewV7()
	if err != nil {
		tb.Fatal(err)
	}
	return u.String()
}

// pushBody builds a push body for a device from items, with a fresh
// UUIDv7 batch id.
func pushBody(tb testing.TB, device string, items ...sp.State) []byte {
	tb.Helper()
	return pushBodyBatch(tb, device, newUUID(tb), items...)
}

// pushBodyBatch builds a push body with the given batch id.
func pushBodyBatch(tb testing.TB, device, batch string, items ...sp.State) []byte {
	tb.Helper()
	req := sp.PushRequest{Device: device, Batch: batch, Records: []json.RawMessage{}}
	for _, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			tb.Fatal(err)
		}
		req.Records = append(req.Records, b)
	}
	b, err := json.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// raw encodes a Go value as a JSON value.
func raw(tb testing.TB, v any) json.RawMessage {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// tablet is a device: its account and its local copy of each record, kept
// with the syncproto merge as a tablet app would.
type tablet struct {
	s      *server
	acc    *auth.Account
	local  map[string]*sp.Record
	cursor string
}

func (s *server) tablet(label string, scopes ...string) *tablet {
	s.t.Helper()
	return &tablet{s: s, acc: s.account(auth.RoleDevice, label, scopes...), local: map[string]*sp.Record{}}
}

// write makes one save of fields on the local record and returns the push
// item: the full clock and this one write. ctx, when not nil, goes on the
// write (a delete).
func (d *tablet) write(id string, fields map[string]any, ctx sp.Clock) sp.State {
	d.s.t.Helper()
	r := d.local[id]
	if r == nil {
		d.s.t.Fatalf("tablet %s has no record %s", d.acc.Name, id)
	}
	if _, deleting := fields[sp.FieldDeleted]; !deleting && sp.Analyze(r).Deleted {
		fields[sp.FieldDeleted] = false // editing a deleted record undeletes it
	}
	d.s.wall += 1000
	clock := r.Clock.Copy()
	clock[d.acc.ID]++
	w := sp.Write{By: d.acc.ID, N: clock[d.acc.ID], At: d.s.wall, Fields: map[string]json.RawMessage{}, Ctx: ctx}
	for k, v := range fields {
		w.Fields[k] = raw(d.s.t, v)
	}
	item := sp.State{ID: id, Form: r.Form, Scope: r.Scope, Clock: clock, Writes: []sp.Write{w}}
	if err := sp.Validate(item); err != nil {
		d.s.t.Fatalf("tablet %s built an invalid item: %v", d.acc.Name, err)
	}
	d.local[id] = sp.ApplyPush(r, sp.FromState(item))
	return item
}

// create starts a new record and returns its id and first push item.
func (d *tablet) create(form, scope string, fields map[string]any) (string, sp.State) {
	d.s.t.Helper()
	id := newUUID(d.s.t)
	d.local[id] = &sp.Record{ID: id, Form: form, Scope: scope, Clock: sp.Clock{}, Fields: map[string][]sp.Sibling{}}
	return id, d.write(id, fields, nil)
}

// save edits fields of a record the tablet holds.
func (d *tablet) save(id string, fields map[string]any) sp.State {
	d.s.t.Helper()
	return d.write(id, fields, nil)
}

// del deletes a record: _deleted = true with ctx = the clock before.
func (d *tablet) del(id string) sp.State {
	d.s.t.Helper()
	return d.write(id, map[string]any{sp.FieldDeleted: true}, d.local[id].Clock.Copy())
}

// push sends items in one batch and returns the answer, failing on error.
func (d *tablet) push(items ...sp.State) *sp.PushResponse {
	d.s.t.Helper()
	resp, err := d.s.svc.Push(d.s.ctx, d.acc, pushBody(d.s.t, d.acc.ID, items...))
	if err != nil {
		d.s.t.Fatalf("push by %s: %v", d.acc.Name, err)
	}
	if len(resp.Results) != len(items) {
		d.s.t.Fatalf("push by %s: %d results for %d items", d.acc.Name, len(resp.Results), len(items))
	}
	return resp
}

// push1 pushes one item and returns its result.
func (d *tablet) push1(item sp.State) sp.PushResult {
	d.s.t.Helper()
	return d.push(item).Results[0]
}

// pull pulls every page from the tablet's cursor, joins each record into
// the local copy, and returns the pulled records.
func (d *tablet) pull() []sp.PulledRecord {
	d.s.t.Helper()
	var all []sp.PulledRecord
	for range 1000 {
		resp, err := pullTyped(d.s.svc, d.s.ctx, d.acc, records.PullQuery{Since: d.cursor, Limit: 100})
		if err != nil {
			d.s.t.Fatalf("pull by %s: %v", d.acc.Name, err)
		}
		for _, pr := range resp.Records {
			in := sp.FromState(pr.State)
			if old := d.local[pr.ID]; old != nil {
				in = sp.Join(old, in)
			}
			d.local[pr.ID] = in
		}
		all = append(all, resp.Records...)
		d.cursor = resp.Cursor
		if !resp.More {
			return all
		}
	}
	d.s.t.Fatal("pull never ended")
	return nil
}

// wantCode fails unless err carries the given protocol code.
func wantCode(tb testing.TB, what string, err error, code sp.Code) {
	tb.Helper()
	if got := sp.ErrorCode(err); got != code {
		tb.Errorf("%s: error %v (code %s), want code %s", what, err, got, code)
	}
}

// wantStatus fails unless a push result has the given status (and, for a
// rejection, error code).
func wantStatus(tb testing.TB, what string, res sp.PushResult, status string, code sp.Code) {
	tb.Helper()
	if res.Status != status {
		tb.Fatalf("%s: status %q (%+v), want %q", what, res.Status, res, status)
	}
	if status == sp.StatusRejected && (res.Error == nil || res.Error.Code != code) {
		tb.Fatalf("%s: rejected with %+v, want code %s", what, res.Error, code)
	}
}

// jsonEqual reports whether two JSON values are equal as parsed JSON.
func jsonEqual(a, b json.RawMessage) bool { return sp.EqualValues(a, b) }

// ids returns the record ids of a conflict page.
func conflictIDs(p *records.ConflictPage) []string {
	out := []string{}
	for _, c := range p.Conflicts {
		out = append(out, c.Record)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// pullTyped pulls a page and decodes it into typed records.
func pullTyped(svc *records.Service, ctx context.Context, caller *auth.Account, q records.PullQuery) (*sp.PullResponse, error) {
	p, err := svc.Pull(ctx, caller, q)
	if err != nil {
		return nil, err
	}
	return p.Decode()
}
