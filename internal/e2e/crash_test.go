package e2e

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Realistic values for the simulated field teams (Guelmim-Oued Noun and
// Souss-Massa): Arabic names and notes, French communes and remarks.
var (
	crashHeadNames = []string{"فاطمة الزهراء", "محمد أمين", "خديجة", "عبد الله", "يوسف بن علي", "مريم", "الحسين أوبلا", "زينب", "سعيد أيت باها", "نعيمة"}
	crashCommunes  = []string{"Guelmim", "Tan-Tan", "Sidi Ifni", "Assa", "Aït Baha", "Taroudant", "Tiznit", "Inezgane", "Bouizakarne", "Tafraout"}
	crashWater     = []string{"puits", "réseau ONEE", "citerne", "source", "borne-fontaine", "متطفية"}
	crashNotes     = []string{
		"Famille de cinq personnes, logement précaire.",
		"الأسرة تحتاج إلى مساعدة عاجلة",
		"Le chef de ménage travaille à l'étranger ; envoi d'argent irrégulier.",
		"تم التحقق من البطاقة الوطنية",
		"Enfant scolarisé à Guelmim, trajet de 12 km.",
		"المنزل متضرر بعد الفيضانات",
		"Revenus agricoles : arganier et orge.",
		"",
	}
)

// crashBatch is a push that was sent: its body, the records it carries and
// each record as the device held it when the batch was built (the state the
// server must hold once the batch is applied).
type crashBatch struct {
	body   map[string]any
	ids    []string
	states map[string]*syncproto.Record
	// refused: the connection was refused, the server never saw it.
	refused bool
}

// crashDevice is one simulated tablet of TestCrashCycles and its
// bookkeeping: the state of each record at its last acknowledged push, and
// the batch sent but not answered, if any. Only this device writes its
// records, so the server's state of each is fully known.
type crashDevice struct {
	d       *Device
	rng     *rand.Rand
	acked   map[string]*syncproto.Record
	own     []string
	pending *crashBatch
	// per cycle
	ackedThisCycle int
	err            error
}

func (cd *crashDevice) fields(n int) map[string]any {
	r := cd.rng
	all := []func() (string, any){
		func() (string, any) { return "head_name", crashHeadNames[r.IntN(len(crashHeadNames))] },
		func() (string, any) { return "commune", crashCommunes[r.IntN(len(crashCommunes))] },
		func() (string, any) { return "household_size", 1 + r.IntN(12) },
		func() (string, any) { return "monthly_income_mad", 100 * r.IntN(60) },
		func() (string, any) { return "water_source", crashWater[r.IntN(len(crashWater))] },
		func() (string, any) { return "notes", crashNotes[r.IntN(len(crashNotes))] },
		func() (string, any) {
			if r.IntN(4) == 0 {
				return "gps", nil // a cleared field
			}
			return "gps", map[string]any{"lat": 28.98 + r.Float64()/10, "lon": -10.05 + r.Float64()/10, "precision_m": 3 + r.IntN(20)}
		},
		func() (string, any) { return "needs", []string{"eau", "santé", "سكن"}[:1+r.IntN(3)] },
	}
	out := map[string]any{}
	for _, i := range r.Perm(len(all))[:n] {
		k, v := all[i]()
		out[k] = v
	}
	return out
}

// nextBatch makes a few saves (new records and edits of the device's own
// earlier records) and builds the push of everything changed.
func (cd *crashDevice) nextBatch() (*crashBatch, error) {
	for range 1 + cd.rng.IntN(3) {
		id, err := cd.d.create(form, cd.fields(4+cd.rng.IntN(4)))
		if err != nil {
			return nil, err
		}
		cd.own = append(cd.own, id)
	}
	for range cd.rng.IntN(4) {
		id := cd.own[cd.rng.IntN(len(cd.own))]
		if _, err := cd.d.edit(id, cd.fields(1+cd.rng.IntN(3))); err != nil {
			return nil, err
		}
	}
	body, ids := cd.d.PushBody()
	b := &crashBatch{body: body, ids: ids, states: map[string]*syncproto.Record{}}
	for _, id := range ids {
		b.states[id] = cd.d.Recs[id]
	}
	return b, nil
}

// acknowledge checks a 200 answer for b and records its items as
// acknowledged.
func (cd *crashDevice) acknowledge(b *crashBatch, resp syncproto.PushResponse) error {
	if err := cd.d.Ack(b.body, resp); err != nil {
		return err
	}
	for i, r := range resp.Results {
		if r.Status != syncproto.StatusApplied {
			return fmt.Errorf("device %s batch %v item %s: status %q, want applied (only this device writes it)", cd.d.ID, b.body["batch"], r.ID, r.Status)
		}
		if !r.Clock.Equal(b.states[b.ids[i]].Clock) {
			return fmt.Errorf("item %s: answer clock %v, want %v", r.ID, r.Clock, b.states[b.ids[i]].Clock)
		}
	}
	for _, id := range b.ids {
		cd.acked[id] = b.states[id]
	}
	return nil
}

// pushUntilCut pushes batch after batch until one is not answered (the
// server was killed). The unanswered batch stays in cd.pending.
func (cd *crashDevice) pushUntilCut(maxBatches int) {
	for range maxBatches {
		b, err := cd.nextBatch()
		if err != nil {
			cd.err = err
			return
		}
		cd.pending = b
		st, resp, e, err := cd.d.srv.push(cd.d.Token, b.body)
		if err != nil {
			b.refused = errors.Is(err, syscall.ECONNREFUSED)
			return // not answered: the server is gone
		}
		if st != http.StatusOK {
			cd.err = fmt.Errorf("device %s push: status %d, error %+v", cd.d.ID, st, e)
			return
		}
		if err := cd.acknowledge(b, resp); err != nil {
			cd.err = err
			return
		}
		cd.pending = nil
		cd.ackedThisCycle++
	}
}

// crashLosses counts the acknowledged writes of want (a device's record at
// its last acknowledged push) that got does not hold: a dot its clock does
// not cover, or a sibling of want missing from got.
func crashLosses(device string, want, got *syncproto.Record) []string {
	var lost []string
	if got == nil {
		return []string{fmt.Sprintf("record %s missing (clock %v acknowledged)", want.ID, want.Clock)}
	}
	if got.Clock[device] < want.Clock[device] {
		lost = append(lost, fmt.Sprintf("record %s: clock[%s] = %d, acknowledged %d", want.ID, device, got.Clock[device], want.Clock[device]))
	}
	for f, sibs := range want.Fields {
		for _, sb := range sibs {
			found := false
			for _, g := range got.Fields[f] {
				if g.Dot == sb.Dot && syncproto.EqualValues(g.Value, sb.Value) {
					found = true
				}
			}
			if !found {
				lost = append(lost, fmt.Sprintf("record %s field %s: acknowledged sibling %v = %s missing (server has %s)", want.ID, f, sb.Dot, sb.Value, showSibs(got.Fields[f])))
			}
		}
	}
	return lost
}

// crashCopyDir copies the regular files of dir into a new temporary
// directory.
func crashCopyDir(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			in.Close()
			t.Fatal(err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestCrashCycles: devices push concurrently; the server is killed with
// SIGKILL at a random moment and restarted over the same data directory,
// cycle after cycle. After each restart every batch answered 200 is on the
// server in full, and every batch sent but not answered is there entirely
// or not at all, and applies in full when retried with its batch id.
func TestCrashCycles(t *testing.T) {
	cycles := 3
	if v := os.Getenv("FIELDSYNC_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FIELDSYNC_CRASH_CYCLES=%q: want a whole number ≥ 1", v)
		}
		cycles = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("FIELDSYNC_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("FIELDSYNC_CRASH_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("crashtest: seed %d (FIELDSYNC_CRASH_SEED), %d cycles", seed, cycles)
	rng := rand.New(rand.NewPCG(seed, 1))

	const nDev = 4
	const maxBatchesPerCycle = 2000 // a bound only: the kill comes long before
	dir := filepath.Join(t.TempDir(), "data")
	s := StartServer(t, dir)
	_, hqTok := s.CreateUser(t, "HQ Rabat", "hq")
	devs := make([]*crashDevice, nDev)
	for i := range devs {
		scope := scopeGON
		if i%2 == 1 {
			scope = scopeSM
		}
		devs[i] = &crashDevice{
			d:     s.NewDevice(t, fmt.Sprintf("tablette %d", i+1), scope),
			rng:   rand.New(rand.NewPCG(seed, uint64(i)+2)),
			acked: map[string]*syncproto.Record{},
		}
	}

	var (
		ackedBatches  int // answered 200 while pushing, verified after the restart
		allOrNothing  int // sent, not answered, found entirely or not at all, applied on retry
		landed        int // of those, found entirely applied
		notLanded     int // of those, found not applied at all
		neverReached  int // of those, refused at connect: the server never saw them
		losses        int
		sigtermChecks int
		copyChecks    int
	)

	// verify compares the server's state of every record with the
	// devices' bookkeeping. Before the retries (pendingOpen), a record of an
	// unanswered batch may hold either its acknowledged state or the
	// batch's; the batch must be found entirely in one or the other.
	verify := func(cycle int, pendingOpen bool) {
		t.Helper()
		recs, _ := s.PullAll(t, hqTok)
		got := pulledByID(recs)
		for _, cd := range devs {
			inPending := map[string]bool{}
			pendingLanded := false
			if pendingOpen && cd.pending != nil {
				var applied, absent []string
				for _, id := range cd.pending.ids {
					inPending[id] = true
					r, ok := got[id]
					var gr *syncproto.Record
					if ok {
						gr = syncproto.FromState(r.State)
					}
					before := cd.acked[id]
					switch {
					case gr != nil && gr.Equal(cd.pending.states[id]):
						applied = append(applied, id)
					case (gr == nil && before == nil) || (gr != nil && before != nil && gr.Equal(before)):
						absent = append(absent, id)
					default:
						have := "nothing"
						if ok {
							have = showState(r.State)
						}
						t.Errorf("cycle %d: device %s unanswered batch %v: record %s is neither its acknowledged state nor the batch's: server has %s, batch %s",
							cycle, cd.d.ID, cd.pending.body["batch"], id, have, showState(cd.pending.states[id].State()))
					}
				}
				if len(applied) > 0 && len(absent) > 0 {
					t.Errorf("cycle %d: device %s unanswered batch %v applied in part: %d items applied %v, %d not %v",
						cycle, cd.d.ID, cd.pending.body["batch"], len(applied), applied, len(absent), absent)
				}
				pendingLanded = len(applied) == len(cd.pending.ids)
			}
			for id, want := range cd.acked {
				if inPending[id] && pendingLanded {
					want = cd.pending.states[id]
				}
				r, ok := got[id]
				var gr *syncproto.Record
				if ok {
					gr = syncproto.FromState(r.State)
				}
				if lost := crashLosses(cd.d.ID, want, gr); len(lost) > 0 {
					for _, l := range lost {
						if losses < 20 {
							t.Errorf("cycle %d: device %s: LOST acknowledged write: %s", cycle, cd.d.ID, l)
						}
						losses++
					}
					continue
				}
				if inPending[id] {
					continue // checked above
				}
				if !gr.Equal(want) {
					t.Errorf("cycle %d: record %s:\nserver %s\nwant   %s", cycle, id, showState(r.State), showState(want.State()))
				}
				if r.Seq != cd.d.Acked[id] {
					t.Errorf("cycle %d: record %s: seq %d, acknowledged %d", cycle, id, r.Seq, cd.d.Acked[id])
				}
			}
			// Nothing on the server that no batch of this device carried.
			for id, r := range got {
				if r.Scope == cd.d.Scope && slices.Contains(r.Clock.Actors(), cd.d.ID) {
					if _, ok := cd.acked[id]; !ok && !inPending[id] {
						t.Errorf("cycle %d: record %s of device %s on the server, never pushed", cycle, id, cd.d.ID)
					}
				}
			}
		}
	}

	done := 0 // cycles completed
	// The summary, also when the test stops early.
	defer func() {
		nRecs := 0
		for _, cd := range devs {
			nRecs += len(cd.acked)
		}
		summary := fmt.Sprintf("crashtest: cycles=%d acknowledged_batches_verified=%d unanswered_batches_all_or_nothing=%d losses=%d",
			done, ackedBatches, allOrNothing, losses)
		t.Logf("%s (records %d; unanswered: %d found applied, %d found not applied, %d of them refused at connect; checks: %d on copies taken after kill -9, %d after SIGTERM)",
			summary, nRecs, landed, notLanded, neverReached, copyChecks, sigtermChecks)
		fmt.Println(summary)
	}()

	for cycle := 1; cycle <= cycles; cycle++ {
		var wg sync.WaitGroup
		for _, cd := range devs {
			cd.ackedThisCycle, cd.err = 0, nil
			wg.Add(1)
			go func() {
				defer wg.Done()
				cd.pushUntilCut(maxBatchesPerCycle)
			}()
		}
		delay := time.Duration(20+rng.IntN(281)) * time.Millisecond
		all := make(chan struct{})
		go func() { wg.Wait(); close(all) }()
		select {
		case <-time.After(delay): // the random moment of the crash
		case <-all:
		}
		if p := s.current(); p == nil || p.exited() {
			t.Fatalf("cycle %d: the server exited on its own before the kill: %v\nlog:\n%s", cycle, p.err, tail(s.Log(), 8000))
		}
		s.Kill9()
		<-all
		for _, cd := range devs {
			if cd.err != nil {
				t.Fatalf("cycle %d: %v", cycle, cd.err)
			}
			ackedBatches += cd.ackedThisCycle
		}

		// The files as the kill left them must check clean (on a copy:
		// check opens the database for writing).
		cp := crashCopyDir(t, dir)
		if out, err := RunCLI("check", "--data", cp); err != nil {
			t.Fatalf("cycle %d: fieldsync check on a copy of the data dir taken after kill -9: %v\n%s", cycle, err, out)
		}
		copyChecks++

		s.Restart(t)
		verify(cycle, true)
		if losses > 0 {
			t.Fatalf("cycle %d: %d acknowledged writes lost", cycle, losses)
		}
		if t.Failed() {
			t.Fatalf("cycle %d failed; stopping", cycle)
		}

		// Retry each unanswered batch with its batch id: 200, then all of
		// its items are there.
		for _, cd := range devs {
			b := cd.pending
			if b == nil {
				continue
			}
			applied := true
			for _, id := range b.ids {
				if !crashInState(t, s, hqTok, id, b.states[id]) {
					applied = false
				}
			}
			st, resp, e, err := s.push(cd.d.Token, b.body)
			if err != nil || st != http.StatusOK {
				t.Fatalf("cycle %d: retry of unanswered batch %v: status %d, error %+v, %v", cycle, b.body["batch"], st, e, err)
			}
			if err := cd.acknowledge(b, resp); err != nil {
				t.Fatalf("cycle %d: retry of unanswered batch %v: %v", cycle, b.body["batch"], err)
			}
			cd.pending = nil
			allOrNothing++
			if applied {
				landed++
			} else {
				notLanded++
			}
			if b.refused {
				neverReached++
			}
		}
		verify(cycle, false)
		if losses > 0 {
			t.Fatalf("cycle %d: %d acknowledged writes lost", cycle, losses)
		}
		if t.Failed() {
			t.Fatalf("cycle %d failed; stopping", cycle)
		}
		done = cycle
		t.Logf("cycle %d: killed after %v; batches acknowledged so far %d, unanswered so far %d (%d had landed, %d had not)",
			cycle, delay, ackedBatches, allOrNothing, landed, notLanded)

		// Now and then (and at the end) a clean stop and a check of the
		// data dir itself.
		if cycle%4 == 0 || cycle == cycles {
			s.Stop(t)
			if out, err := RunCLI("check", "--data", dir); err != nil {
				t.Fatalf("cycle %d: fieldsync check after SIGTERM: %v\n%s", cycle, err, out)
			}
			sigtermChecks++
			if cycle != cycles {
				s.Restart(t)
			}
		}
	}

	if losses != 0 {
		t.Fatalf("%d acknowledged writes lost", losses)
	}
	if ackedBatches == 0 {
		t.Fatalf("no batch was acknowledged: the test proved nothing")
	}
}

// crashInState reports whether the server holds exactly want for record id
// (GET /v1/records/{id} with a read token).
func crashInState(t *testing.T, s *Server, token, id string, want *syncproto.Record) bool {
	t.Helper()
	st, v := s.GetRecord(t, token, id)
	if st == http.StatusNotFound {
		return false
	}
	if st != http.StatusOK {
		t.Fatalf("GET /v1/records/%s: status %d", id, st)
	}
	return syncproto.FromState(v.Record).Equal(want)
}
