package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

var (
	fleetSeed   = flag.Uint64("fleet.seed", 0, "seed of TestFleetConverges (0: from the clock)")
	fleetRounds = flag.Int("fleet.rounds", 10, "rounds of TestFleetConverges")
)

// errDropped is what the flaky network returns for a request it never sent.
var errDropped = errors.New("test: request dropped")

// flakyNet is a transport that, while on, loses some answers after the
// server handled the request, sends some requests twice (answering the
// second), drops some before they leave, and answers some with a 503.
type flakyNet struct {
	mu                        sync.Mutex
	rng                       *rand.Rand
	on                        bool
	pLose, pDup, pDrop, p503  float64
	lost, dups, dropped, s503 int
	// onPush, when set, sees every push before it leaves (while on).
	onPush func(*sp.PushRequest)
}

func (n *flakyNet) setOn(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.on = on
}

func (n *flakyNet) RoundTrip(req *http.Request) (*http.Response, error) {
	n.mu.Lock()
	x := n.rng.Float64()
	on := n.on
	onPush := n.onPush
	var fault string
	switch {
	case !on:
	case x < n.pDrop:
		fault, n.dropped = "drop", n.dropped+1
	case x < n.pDrop+n.p503:
		fault, n.s503 = "503", n.s503+1
	case x < n.pDrop+n.p503+n.pLose:
		fault, n.lost = "lose", n.lost+1
	case x < n.pDrop+n.p503+n.pLose+n.pDup:
		fault, n.dups = "dup", n.dups+1
	}
	n.mu.Unlock()
	if on && onPush != nil && req.URL.Path == routePush {
		_, body, err := readRequestBody(req)
		if err != nil {
			return nil, err
		}
		var pr sp.PushRequest
		if err := json.Unmarshal(body, &pr); err != nil {
			return nil, err
		}
		onPush(&pr)
	}
	next := http.DefaultTransport
	switch fault {
	case "drop":
		return nil, errDropped
	case "503":
		r := newResponse(req, http.StatusServiceUnavailable, []byte(`{"error":{"code":"unavailable","message":"test: overloaded"}}`))
		return r, nil
	case "lose":
		if _, _, err := forwardAndRead(next, req); err != nil {
			return nil, err
		}
		return nil, errLostAnswer
	case "dup":
		raw, _, err := readRequestBody(req)
		if err != nil {
			return nil, err
		}
		first := req.Clone(req.Context())
		if raw != nil {
			first.Body = io.NopCloser(bytes.NewReader(raw))
			req.Body = io.NopCloser(bytes.NewReader(raw))
		}
		if _, _, err := forwardAndRead(next, first); err != nil {
			return nil, err
		}
	}
	return next.RoundTrip(req)
}

// fieldKey names one field of one record.
type fieldKey struct{ record, field string }

// savedValue is one value a device saved.
type savedValue struct {
	fieldKey
	device, value string
}

// fleetDevice is a simulated tablet.
type fleetDevice struct {
	name string
	c    *Client
	// unsynced holds the fields this device saved since its last successful
	// Sync. The simulation does not save them again until a Sync succeeds:
	// a save replaces the device's own earlier value of the field, and a
	// value that never left the device is the device's to overwrite.
	unsynced map[fieldKey]string // the value saved
}

// Many devices edit a few records at random over several rounds, offline
// or syncing through a network that loses answers, duplicates requests,
// drops requests and answers 503s. Then the network heals and every device
// syncs twice in turn. Every device must hold exactly the server's state
// of every record, with nothing dirty, and every value any device saved
// must be visible, a sibling, or in the record's history on the server.
func TestFleetConverges(t *testing.T) {
	seed := *fleetSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -fleet.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	const nDevices = 6
	nRounds := *fleetRounds
	fields := []string{"household_size", "head_name", "monthly_income_mad", "water_source", "notes"}
	srv := MustStartServer(t)
	network := &flakyNet{rng: rand.New(rand.NewPCG(seed, 2)), on: true, pLose: 0.12, pDup: 0.12, pDrop: 0.08, p503: 0.08}
	encodings := []string{EncodingNone, EncodingGzip, EncodingZstd}
	var devs []*fleetDevice
	for i := range nDevices {
		id, tok := srv.NewDevice(t, fmt.Sprintf("tablet %d", i))
		c := MustOpenClient(t, "", Options{
			ServerURL: srv.URL, Token: tok, Device: id, Encoding: encodings[i%3],
			HTTPClient: &http.Client{Transport: network},
			BatchSize:  3, PullLimit: 4, MaxRetries: 2, BackoffBase: time.Millisecond,
		})
		devs = append(devs, &fleetDevice{name: fmt.Sprintf("d%d", i), c: c, unsynced: map[fieldKey]string{}})
	}

	var saved []savedValue
	var trace []string // what happened, shown when a value is lost
	seq := 0
	ctx := context.Background()
	save := func(d *fleetDevice, id, form, scope string, names []string) {
		vals := map[string]any{}
		for _, f := range names {
			seq++
			v := fmt.Sprintf("%s#%d", d.name, seq)
			vals[f] = v
			saved = append(saved, savedValue{fieldKey{id, f}, d.c.Device(), v})
			d.unsynced[fieldKey{id, f}] = v
		}
		trace = append(trace, fmt.Sprintf("%s save %s %v", d.name, id[len(id)-4:], vals))
		if err := d.c.Save(ctx, id, form, scope, vals); err != nil {
			t.Fatalf("%s: save: %v", d.name, err)
		}
	}
	// While a push is in flight, a device sometimes saves again, even
	// fields the batch carries: those stay dirty for the next batch. The
	// batch is persisted and resent as is until answered, so the values it
	// carries are handed over.
	byDevice := map[string]*fleetDevice{}
	for _, d := range devs {
		byDevice[d.c.Device()] = d
	}
	midFlight := 0
	network.onPush = func(pr *sp.PushRequest) {
		d := byDevice[pr.Device]
		trace = append(trace, fmt.Sprintf("%s push %s (%d items)", d.name, pr.Batch, len(pr.Records)))
		var items []sp.State
		for _, raw := range pr.Records {
			var st sp.State
			if err := json.Unmarshal(raw, &st); err != nil {
				t.Errorf("push item: %v", err)
				return
			}
			items = append(items, st)
			for _, w := range st.Writes {
				for f, v := range w.Fields {
					k := fieldKey{st.ID, f}
					if u, ok := d.unsynced[k]; ok && w.By == pr.Device && string(v) == fmt.Sprintf("%q", u) {
						delete(d.unsynced, k)
					}
				}
			}
		}
		if len(items) == 0 || rng.Float64() >= 0.3 {
			return
		}
		id := items[rng.IntN(len(items))].ID
		var free []string
		for _, f := range fields {
			if _, ok := d.unsynced[fieldKey{id, f}]; !ok {
				free = append(free, f)
			}
		}
		if len(free) == 0 {
			return
		}
		midFlight++
		save(d, id, "", "", pick(rng, free, 1+rng.IntN(2)))
	}
	syncs, failed := 0, 0
	for round := range nRounds {
		for _, i := range rng.Perm(nDevices) {
			d := devs[i]
			list, err := d.c.List()
			if err != nil {
				t.Fatal(err)
			}
			for range 1 + rng.IntN(3) {
				switch x := rng.Float64(); {
				case x < 0.15 || len(list) == 0:
					id := NewID()
					save(d, id, "assessment", testScope, pick(rng, fields, 1+rng.IntN(3)))
				case x < 0.22:
					if err := d.c.Delete(ctx, list[rng.IntN(len(list))].ID); err != nil {
						t.Fatalf("%s: delete: %v", d.name, err)
					}
				default:
					id := list[rng.IntN(len(list))].ID
					var free []string
					for _, f := range fields {
						if _, ok := d.unsynced[fieldKey{id, f}]; !ok {
							free = append(free, f)
						}
					}
					if len(free) > 0 {
						save(d, id, "", "", pick(rng, free, 1+rng.IntN(2)))
					}
				}
			}
			if rng.Float64() < 0.35 { // offline this round
				continue
			}
			syncs++
			before := maps.Clone(d.unsynced)
			rep, err := d.c.Sync(ctx)
			trace = append(trace, fmt.Sprintf("%s sync: %+v, %v", d.name, rep, err))
			if len(rep.Rejected) > 0 {
				t.Errorf("round %d, %s: rejected items %+v", round, d.name, rep.Rejected)
			}
			if err != nil {
				if !errors.Is(err, ErrGaveUp) {
					t.Fatalf("round %d, %s: sync: %v (want only ErrGaveUp from a flaky network)", round, d.name, err)
				}
				failed++
				continue
			}
			for k, v := range before {
				if d.unsynced[k] == v {
					delete(d.unsynced, k)
				}
			}
		}
	}
	t.Logf("%d saves (%d while a push was in flight), %d syncs (%d gave up); network: %d lost answers, %d duplicated, %d dropped, %d 503s",
		len(saved), midFlight, syncs, failed, network.lost, network.dups, network.dropped, network.s503)

	// Quiescence: the network heals; every device syncs twice in turn.
	network.setOn(false)
	for range 2 {
		for _, d := range devs {
			mustSync(t, d.c)
		}
	}
	server, _ := srv.PullAll(t)
	for _, d := range devs {
		assertEqualsServer(t, d.c, server)
	}

	// Nothing saved is lost.
	sup := srv.NewUser(t, auth.RoleSupervisor, "Samira")
	histories := map[string][]historyEntry{}
	inHistory := func(sv savedValue) bool {
		h, ok := histories[sv.record]
		if !ok {
			h = srv.History(t, sup, sv.record)
			histories[sv.record] = h
		}
		want := []byte(fmt.Sprintf("%q", sv.value))
		for _, e := range h {
			if bytes.Equal(e.Values[sv.field], want) {
				return true
			}
			for _, s := range e.Siblings[sv.field] {
				if bytes.Equal(s.V, want) && s.By == sv.device {
					return true
				}
			}
		}
		return false
	}
	defer func() {
		if t.Failed() {
			t.Logf("trace:\n%s", strings.Join(trace, "\n"))
		}
	}()
	onlyHistory := 0
	for _, sv := range saved {
		rec := server[sv.record]
		if rec == nil {
			t.Errorf("record %s (saved by %s) is not on the server", sv.record, sv.device)
			continue
		}
		live := slices.ContainsFunc(rec.Fields[sv.field], func(s sp.Sibling) bool {
			return s.By == sv.device && string(s.Value) == fmt.Sprintf("%q", sv.value)
		})
		hist := inHistory(sv)
		if !live && !hist {
			t.Errorf("value %s of %s.%s saved by %s is lost: not a sibling, not in the history", sv.value, sv.record, sv.field, sv.device)
		}
		if !live {
			onlyHistory++
		}
		if !hist {
			t.Errorf("value %s of %s.%s saved by %s reached the server but its history does not show it (PROTOCOL.md §1: the history keeps every value ever accepted)", sv.value, sv.record, sv.field, sv.device)
		}
	}
	conflicts := 0
	for _, r := range server {
		if sp.Analyze(r).HasConflict() {
			conflicts++
		}
	}
	t.Logf("%d records, %d in conflict; %d saved values overwritten and kept by the history", len(server), conflicts, onlyHistory)
}

// pick returns k distinct elements of from, at random.
func pick(rng *rand.Rand, from []string, k int) []string {
	if k > len(from) {
		k = len(from)
	}
	out := slices.Clone(from)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:k]
}
