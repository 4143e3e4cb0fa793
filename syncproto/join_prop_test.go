package syncproto_test

// Properties of the merge (PROTOCOL.md §1–§2) over generated histories.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"pgregory.net/rapid"
)

func mustEqual(t *rapid.T, what string, got, want *sp.Record) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s:\n got  %s\n want %s", what, stateJSON(got), stateJSON(want))
	}
}

// Join is commutative, associative and idempotent on any states of one history.
func TestPropJoinSemilattice(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genAnySim.Draw(t, "sim")
		pick := rapid.SampledFrom(s.snaps)
		a, b, c := pick.Draw(t, "a"), pick.Draw(t, "b"), pick.Draw(t, "c")
		ab := sp.Join(a, b)
		mustEqual(t, "commutative", sp.Join(b, a), ab)
		mustEqual(t, "associative", sp.Join(ab, c), sp.Join(a, sp.Join(b, c)))
		mustEqual(t, "idempotent", sp.Join(a, a), a)
		mustEqual(t, "absorbing", sp.Join(ab, a), ab)
		if err := sp.Validate(ab.State()); err != nil {
			t.Fatalf("join refused by Validate: %v", err)
		}
	})
}

// Any multiset of states, joined in any order and any grouping, gives one state.
func TestPropJoinAnyOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genAnySim.Draw(t, "sim")
		idx := rapid.SliceOfN(rapid.IntRange(0, len(s.snaps)-1), 1, 12).Draw(t, "picks")
		var rs []*sp.Record
		for _, i := range idx {
			rs = append(rs, s.snaps[i])
		}
		want := fold(rs)
		mustEqual(t, "permuted", fold(rapid.Permutation(rs).Draw(t, "perm")), want)
		// A random tree: join two random members until one is left.
		work := slices.Clone(rs)
		for len(work) > 1 {
			i := rapid.IntRange(0, len(work)-1).Draw(t, "i")
			j := rapid.IntRange(0, len(work)-2).Draw(t, "j")
			if j >= i {
				j++
			}
			joined := sp.Join(work[i], work[j])
			work[i] = joined
			work = slices.Delete(work, j, j+1)
		}
		mustEqual(t, "tree", work[0], want)
	})
}

// Joining every replica keeps exactly the writes that no write of the same
// field has seen: losing values are never dropped, overwritten ones are.
func TestPropJoinMatchesCausalOracle(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genAnySim.Draw(t, "sim")
		mustEqual(t, "join of all replicas", s.joinAll(), s.causalOracle())
	})
}

// A save on a replica that has seen every other replica holds the only
// sibling of each field it writes, once everything is joined.
func TestPropWriteAfterSeeingAllNoConflict(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genAnySim.Draw(t, "sim")
		i := rapid.IntRange(0, supervisorNode).Draw(t, "writer")
		s.seeAll(i)
		var w sp.Write
		if rapid.IntRange(0, 4).Draw(t, "delete") == 0 {
			w = s.del(i, s.tick(t))
		} else {
			w = s.edit(i, s.tick(t), drawFields(t, 1, 5))
		}
		all := s.joinAll()
		a := sp.Analyze(all)
		for name := range w.Fields {
			if sibs := all.Fields[name]; len(sibs) != 1 || sibs[0].Dot != w.Dot() {
				t.Fatalf("field %s holds %d siblings after a save that had seen all: %s", name, len(sibs), stateJSON(all))
			}
			if slices.Contains(a.ConflictFields(), name) {
				t.Fatalf("field %s in conflict after a save that had seen all", name)
			}
		}
		if w.Fields[sp.FieldDeleted] != nil && len(a.DeleteEdit) > 0 {
			t.Fatalf("a delete that had seen all gives delete_edit %v", a.DeleteEdit)
		}
	})
}

// Two concurrent saves of one field: different values always conflict,
// equal values (other spelling, keys reordered) never do.
func TestPropConcurrentSameField(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genAnySim.Draw(t, "sim")
		x := rapid.IntRange(0, supervisorNode).Draw(t, "x")
		y := rapid.IntRange(0, supervisorNode-1).Draw(t, "y")
		if y >= x {
			y++
		}
		field := rapid.SampledFrom(fieldNames).Draw(t, "field")
		cx := rapid.IntRange(0, len(valueClasses)-1).Draw(t, "class x")
		same := rapid.Bool().Draw(t, "same")
		cy := cx
		if !same {
			cy = (cx + 1 + rapid.IntRange(0, len(valueClasses)-2).Draw(t, "class y")) % len(valueClasses)
		}
		vx := rapid.SampledFrom(valueClasses[cx]).Draw(t, "vx")
		vy := rapid.SampledFrom(valueClasses[cy]).Draw(t, "vy")
		s.edit(x, s.tick(t), map[string]json.RawMessage{field: json.RawMessage(vx)})
		s.edit(y, s.tick(t), map[string]json.RawMessage{field: json.RawMessage(vy)})
		pair := sp.Join(s.nodes[x], s.nodes[y])
		if n := len(pair.Fields[field]); n != 2 {
			t.Fatalf("%d siblings of %s, want 2", n, field)
		}
		got := slices.Contains(sp.Analyze(pair).Conflicts, field)
		if got == same {
			t.Fatalf("%s = %s vs %s: conflict %v", field, vx, vy, got)
		}
		if !same && !slices.Contains(sp.Analyze(s.joinAll()).Conflicts, field) {
			t.Fatalf("%s = %s vs %s: no conflict once every replica is joined", field, vx, vy)
		}
	})
}

// Concurrent saves of different fields, from one common state, merge
// without any new conflict.
func TestPropConcurrentDifferentFields(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genAnySim.Draw(t, "sim")
		x := rapid.IntRange(0, supervisorNode).Draw(t, "x")
		y := rapid.IntRange(0, supervisorNode-1).Draw(t, "y")
		if y >= x {
			y++
		}
		s.sync(x, y)
		s.sync(y, x)
		base := sp.Analyze(s.nodes[x])
		names := rapid.Permutation(fieldNames).Draw(t, "names")
		k := rapid.IntRange(1, len(names)-1).Draw(t, "split")
		fx, fy := map[string]json.RawMessage{}, map[string]json.RawMessage{}
		for n, name := range names {
			v := json.RawMessage(rapid.SampledFrom(allValues).Draw(t, "v"))
			if n < k {
				fx[name] = v
			} else if rapid.Bool().Draw(t, "y writes "+name) || len(fy) == 0 {
				fy[name] = v
			}
		}
		s.edit(x, s.tick(t), fx)
		s.edit(y, s.tick(t), fy)
		got := sp.Analyze(sp.Join(s.nodes[x], s.nodes[y]))
		want := slices.DeleteFunc(slices.Clone(base.Conflicts), func(f string) bool { return fx[f] != nil || fy[f] != nil })
		if !slices.Equal(got.Conflicts, want) {
			t.Fatalf("conflicts %v, want %v (before: %v)", got.Conflicts, want, base.Conflicts)
		}
		if len(got.DeleteEdit) > 0 {
			t.Fatalf("edits after a common state give delete_edit %v", got.DeleteEdit)
		}
	})
}

// The visible value is the sibling with the greatest (at, by, n), whatever
// the join order; conflicts and delete_edit follow their definitions.
func TestPropVisibleLWWAndAnalyze(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genAnySim.Draw(t, "sim")
		r1 := fold(rapid.Permutation(s.nodes).Draw(t, "order 1"))
		r2 := fold(rapid.Permutation(s.nodes).Draw(t, "order 2"))
		a1, a2 := sp.Analyze(r1), sp.Analyze(r2)
		if len(a1.Visible) != len(r1.Fields) || len(a2.Visible) != len(a1.Visible) {
			t.Fatalf("visible has %d/%d fields, record %d", len(a1.Visible), len(a2.Visible), len(r1.Fields))
		}
		for name, sibs := range r1.Fields {
			want := lwwOracle(sibs).Value
			if string(a1.Visible[name]) != string(want) || string(a2.Visible[name]) != string(want) {
				t.Fatalf("visible %s = %s / %s, want %s", name, a1.Visible[name], a2.Visible[name], want)
			}
		}
		for _, r := range append(slices.Clone(s.snaps), r1) {
			a := sp.Analyze(r)
			conflicts, deleteEdit, deleted := analyzeOracle(t, r)
			if !slices.Equal(a.Conflicts, conflicts) || !slices.Equal(a.DeleteEdit, deleteEdit) || a.Deleted != deleted {
				t.Fatalf("Analyze = %v %v %v, want %v %v %v\n%s", a.Conflicts, a.DeleteEdit, a.Deleted, conflicts, deleteEdit, deleted, stateJSON(r))
			}
		}
	})
}

// State, JSON, and back gives an equal record and the same bytes.
func TestPropWireRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genAnySim.Draw(t, "sim")
		for _, r := range append(s.snaps, s.joinAll()) {
			st := r.State()
			if err := sp.Validate(st); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			mustEqual(t, "FromState(State())", sp.FromState(st), r)
			b, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			var back sp.State
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "through JSON", sp.FromState(back), r)
			if b2, _ := json.Marshal(sp.FromState(back).State()); string(b2) != string(b) {
				t.Fatalf("wire bytes changed:\n%s\n%s", b, b2)
			}
		}
	})
}

// subset is the item of a replica that carries only the given fields.
func subset(st sp.State, carried map[string]bool) sp.State {
	out := st
	out.Writes = nil
	for _, w := range st.Writes {
		f := map[string]json.RawMessage{}
		for name, v := range w.Fields {
			if carried[name] {
				f[name] = v
			}
		}
		if len(f) > 0 {
			w.Fields = f
			if f[sp.FieldDeleted] == nil {
				w.Ctx = nil
			}
			out.Writes = append(out.Writes, w)
		}
	}
	return out
}

// A push of a replica's full state is the join; a push carrying some fields
// merges those as the join does and leaves the others as the server has them.
// Through the hub, pushing only the fields saved since the last push is
// accepted and gives the same state as pushing everything.
func TestPropPush(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		hub := rapid.Bool().Draw(t, "hub")
		s := genSim(hub).Draw(t, "sim")
		i := rapid.IntRange(0, supervisorNode).Draw(t, "device")
		server, rep, device := s.nodes[serverNode], s.nodes[i], actors[i]
		joined := sp.Join(server, rep)
		full := rep.State()
		err := sp.CheckItem(full, server, device, false)
		if hub && err != nil {
			t.Fatalf("full push through the hub refused: %v", err)
		}
		if err == nil {
			mustEqual(t, "push of the full state", sp.ApplyPush(server, sp.FromState(full)), joined)
			if len(server.Clock) == 0 {
				mustEqual(t, "push of a new record", sp.ApplyPush(nil, sp.FromState(full)), joined)
			}
		}
		if hub {
			item := subset(full, s.dirty[i])
			if err := sp.CheckItem(item, server, device, false); err != nil {
				t.Fatalf("push of the fields saved since the last push refused: %v", err)
			}
			mustEqual(t, "push of the saved fields", sp.ApplyPush(server, sp.FromState(item)), joined)
		}
		carried := map[string]bool{}
		for name := range rep.Fields {
			if rapid.Bool().Draw(t, "carry "+name) {
				carried[name] = true
			}
		}
		item := subset(full, carried)
		if err := sp.Validate(item); err != nil {
			t.Fatalf("subset item refused: %v", err)
		}
		out := sp.ApplyPush(server, sp.FromState(item))
		if !out.Clock.Equal(server.Clock.Max(rep.Clock)) {
			t.Fatalf("clock %v, want the max", out.Clock)
		}
		for name := range joined.Fields {
			want := server.Fields[name]
			if carried[name] {
				want = joined.Fields[name]
			}
			if !sameSiblings(out.Fields[name], want) {
				t.Fatalf("field %s (carried %v) after push:\n%s", name, carried[name], stateJSON(out))
			}
		}
		for name := range out.Fields {
			if _, ok := joined.Fields[name]; !ok && !sameSiblings(out.Fields[name], server.Fields[name]) {
				t.Fatalf("field %s appeared after push", name)
			}
		}
	})
}

// A delete that has seen every sibling gives no delete_edit; an edit
// concurrent with the visible delete is listed in DeleteEdit.
func TestPropDeleteEdit(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genAnySim.Draw(t, "sim")
		x := rapid.IntRange(0, supervisorNode).Draw(t, "deleter")
		y := rapid.IntRange(0, supervisorNode-1).Draw(t, "editor")
		if y >= x {
			y++
		}
		if rapid.Bool().Draw(t, "seen all") {
			s.seeAll(x)
			s.del(x, s.tick(t))
			a := sp.Analyze(s.joinAll())
			if !a.Deleted || len(a.DeleteEdit) > 0 || slices.Contains(a.ConflictFields(), sp.FieldDeleted) {
				t.Fatalf("delete that had seen all: deleted %v, delete_edit %v", a.Deleted, a.DeleteEdit)
			}
			return
		}
		s.del(x, s.now+1000) // later than anything: the visible _deleted
		field := rapid.SampledFrom(fieldNames).Draw(t, "field")
		s.edit(y, s.tick(t), map[string]json.RawMessage{field: json.RawMessage(rapid.SampledFrom(allValues).Draw(t, "v"))})
		for _, r := range []*sp.Record{sp.Join(s.nodes[x], s.nodes[y]), s.joinAll()} {
			a := sp.Analyze(r)
			if !a.Deleted || !slices.Contains(a.DeleteEdit, field) || !slices.Contains(a.ConflictFields(), sp.FieldDeleted) {
				t.Fatalf("edit of %s concurrent with the delete: deleted %v, delete_edit %v\n%s", field, a.Deleted, a.DeleteEdit, stateJSON(r))
			}
		}
	})
}

// Numbers compare by value (§1): one number spelled with digits only, with a
// fraction, or with an exponent is one value, and concurrent saves of it
// never conflict. A plain loop, not rapid: the domain is small and listed.
func TestPropEqualNumbersByValue(t *testing.T) {
	var bad []string
	for _, mant := range []string{"1", "25", "-3", "9007199254740993"} {
		for e := 0; e <= 22; e++ {
			digits := mant + strings.Repeat("0", e)
			for _, other := range []string{mant + "e" + strconv.Itoa(e), mant + "E+" + strconv.Itoa(e), digits + ".0"} {
				s := newSim()
				s.edit(0, baseAt, map[string]json.RawMessage{"monthly_income_mad": json.RawMessage(digits)})
				s.edit(1, baseAt, map[string]json.RawMessage{"monthly_income_mad": json.RawMessage(other)})
				conflict := len(sp.Analyze(sp.Join(s.nodes[0], s.nodes[1])).Conflicts) > 0
				if eq := sp.EqualValues(json.RawMessage(digits), json.RawMessage(other)); !eq || conflict {
					bad = append(bad, fmt.Sprintf("%s vs %s: EqualValues %v, conflict %v", digits, other, eq, conflict))
				}
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d spellings of one number compare as different values (spurious hard conflicts), e.g.\n%s", len(bad), strings.Join(bad[:min(len(bad), 6)], "\n"))
	}
}
