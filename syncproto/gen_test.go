package syncproto_test

// Generators of realistic histories of one record, for the property tests:
// three devices and a supervisor, each with its own replica, and a server
// that never writes and only relays (PROTOCOL.md §1: local saves and joins).

import (
	"bytes"
	"encoding/json"
	"sort"
	"testing"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"pgregory.net/rapid"
)

const (
	recID    = "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00"
	recForm  = "assessment"
	recScope = "guelmim-oued-noun"
	baseAt   = int64(1730628900000)
)

// actors[i] owns replica i; the supervisor is the last one.
var actors = []string{
	"0193a6f4-7c1e-7b55-9a10-00000000000a",
	"0193a6f4-7c1e-7b55-9a10-00000000000b",
	"0193a6f4-7c1e-7b55-9a10-00000000000c",
	"0193a6f4-7c1e-7b55-9a10-00000000005e",
}

const (
	supervisorNode = 3
	serverNode     = 4 // the hub: joins, never writes
	numNodes       = 5
)

var fieldNames = []string{"head_name", "household_size", "monthly_income_mad", "sector", "notes"}

// valueClasses groups spellings of one JSON value: two values are equal as
// parsed JSON exactly when they come from the same class. This is the
// tests' own oracle of EqualValues.
var valueClasses = [][]string{
	{`"فاطمة"`, `"\u0641\u0627\u0637\u0645\u0629"`},
	{`"Fatima"`},
	{`"crafts"`},
	{`""`},
	{`"1"`},
	{`1`, `1.0`, `1e0`},
	{`5`, `5.00`},
	{`1200`, `1.2e3`, `1200.0`},
	{`0`, `-0`, `0.0`},
	{`null`},
	{`true`},
	{`false`},
	{`{"lat":28.98,"lon":-10.05}`, `{"lon":-10.05,"lat":28.98}`, `{ "lat": 28.98, "lon": -10.05 }`},
	{`["a",1]`, `["a",1.0]`, `[ "a" , 1 ]`},
	{`{"members":[{"age":34,"name":"فاطمة"},{"age":7,"name":"Ali"}]}`, `{"members":[{"name":"فاطمة","age":34},{"name":"Ali","age":7.0}]}`},
	{`{}`},
	{`[]`},
}

var allValues, classOf = func() ([]string, map[string]int) {
	var all []string
	class := map[string]int{}
	for i, c := range valueClasses {
		for _, v := range c {
			all = append(all, v)
			class[string(compactJSON(v))] = i
		}
	}
	return all, class
}()

func compactJSON(v string) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(v)); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// sim is a simulated set of replicas of one record.
type sim struct {
	nodes []*sp.Record
	now   int64
	log   []loggedWrite     // every write ever made
	snaps []*sp.Record      // every state any node ever held
	dirty []map[string]bool // per device node: fields written since its last push
}

// loggedWrite is one save with the writer's clock after it (its causal past).
type loggedWrite struct {
	dot  sp.Dot
	sibs map[string]sp.Sibling
	seen sp.Clock
}

func emptyRecord() *sp.Record {
	return sp.FromState(sp.State{ID: recID, Form: recForm, Scope: recScope, Clock: sp.Clock{}})
}

func newSim() *sim {
	s := &sim{now: baseAt}
	for i := 0; i < numNodes; i++ {
		s.nodes = append(s.nodes, emptyRecord())
		s.dirty = append(s.dirty, map[string]bool{})
	}
	s.snaps = append(s.snaps, s.nodes[0])
	return s
}

// save makes a local write on node i: the actor adds 1 to its own count, and
// the write's siblings replace the replica's siblings of the fields it writes.
func (s *sim) save(i int, at int64, fields map[string]json.RawMessage, ctx sp.Clock) sp.Write {
	rec := s.nodes[i]
	actor := actors[i]
	clock := rec.Clock.Copy()
	clock[actor]++
	w := sp.Write{By: actor, N: clock[actor], At: at, Fields: fields, Ctx: ctx}
	one := sp.FromState(sp.State{ID: recID, Form: recForm, Scope: recScope, Clock: clock, Writes: []sp.Write{w}})
	out := &sp.Record{ID: rec.ID, Form: rec.Form, Scope: rec.Scope, Clock: clock, Fields: map[string][]sp.Sibling{}}
	for name, sibs := range rec.Fields {
		out.Fields[name] = sibs
	}
	lw := loggedWrite{dot: w.Dot(), sibs: map[string]sp.Sibling{}, seen: clock.Copy()}
	for name, sibs := range one.Fields {
		out.Fields[name] = sibs
		lw.sibs[name] = sibs[0]
		s.dirty[i][name] = true
	}
	s.nodes[i] = out
	s.log = append(s.log, lw)
	s.snaps = append(s.snaps, out)
	return w
}

// edit saves values; on a deleted record the same save undeletes it (only
// non-reserved fields count as edits).
func (s *sim) edit(i int, at int64, fields map[string]json.RawMessage) sp.Write {
	edits := false
	for name := range fields {
		edits = edits || !sp.IsReserved(name)
	}
	if edits && sp.Analyze(s.nodes[i]).Deleted {
		fields[sp.FieldDeleted] = json.RawMessage(`false`)
	}
	return s.save(i, at, fields, nil)
}

// del deletes on node i, with ctx = the replica's clock before the write.
func (s *sim) del(i int, at int64) sp.Write {
	ctx := s.nodes[i].Clock.Copy()
	return s.save(i, at, map[string]json.RawMessage{sp.FieldDeleted: json.RawMessage(`true`)}, ctx)
}

// sync is dst := Join(dst, src).
func (s *sim) sync(dst, src int) {
	s.nodes[dst] = sp.Join(s.nodes[dst], s.nodes[src])
	if src < serverNode && dst == serverNode {
		s.dirty[src] = map[string]bool{}
	}
	s.snaps = append(s.snaps, s.nodes[dst])
}

// seeAll brings node i up to date with every other node.
func (s *sim) seeAll(i int) {
	for j := range s.nodes {
		if j != i {
			s.sync(i, j)
		}
	}
}

func (s *sim) joinAll() *sp.Record { return fold(s.nodes) }

func (s *sim) tick(t *rapid.T) int64 {
	s.now += int64(rapid.IntRange(0, 3).Draw(t, "dt"))
	return s.now + int64(rapid.IntRange(-2, 2).Draw(t, "skew")) // device clocks drift; ties happen
}

func drawFields(t *rapid.T, min, max int) map[string]json.RawMessage {
	names := rapid.SliceOfNDistinct(rapid.SampledFrom(fieldNames), min, max, func(s string) string { return s }).Draw(t, "fields")
	out := map[string]json.RawMessage{}
	for _, n := range names {
		out[n] = json.RawMessage(rapid.SampledFrom(allValues).Draw(t, "value"))
	}
	return out
}

// step draws one step: a save, a delete, a review, or a sync. In hub mode
// every sync is a push to or a pull from the server.
func (s *sim) step(t *rapid.T, hub bool) {
	switch kind := rapid.IntRange(0, 9).Draw(t, "kind"); {
	case kind < 4:
		i := rapid.IntRange(0, supervisorNode).Draw(t, "writer")
		s.edit(i, s.tick(t), drawFields(t, 1, 3))
	case kind == 4:
		s.del(rapid.IntRange(0, supervisorNode).Draw(t, "deleter"), s.tick(t))
	case kind == 5 && rapid.Bool().Draw(t, "review"):
		review := rapid.SampledFrom([]string{`{"state":"approved","note":"","by":"Khadija"}`,
			`{"by":"Khadija","note":"household size?","state":"has_issues"}`}).Draw(t, "review")
		s.edit(supervisorNode, s.tick(t), map[string]json.RawMessage{sp.FieldReview: json.RawMessage(review)})
	case hub:
		i := rapid.IntRange(0, supervisorNode).Draw(t, "device")
		if rapid.Bool().Draw(t, "push") {
			s.sync(serverNode, i)
		} else {
			s.sync(i, serverNode)
		}
	default:
		dst := rapid.IntRange(0, numNodes-1).Draw(t, "dst")
		src := rapid.IntRange(0, numNodes-2).Draw(t, "src")
		if src >= dst {
			src++
		}
		s.sync(dst, src)
	}
}

// genSim draws a history; hub forces every sync through the server.
func genSim(hub bool) *rapid.Generator[*sim] {
	return rapid.Custom(func(t *rapid.T) *sim {
		s := newSim()
		for n := rapid.IntRange(0, 40).Draw(t, "steps"); n > 0; n-- {
			s.step(t, hub)
		}
		return s
	})
}

// genAnySim draws a history, peer to peer or through the hub.
var genAnySim = rapid.Custom(func(t *rapid.T) *sim {
	return genSim(rapid.Bool().Draw(t, "hub")).Draw(t, "sim")
})

func fold(rs []*sp.Record) *sp.Record {
	acc := rs[0]
	for _, r := range rs[1:] {
		acc = sp.Join(acc, r)
	}
	return acc
}

// causalOracle is what joining every replica must give, computed from the
// log: the clock of everything written, and for each field the writes of it
// that no other write of it has seen (losing values are never dropped).
func (s *sim) causalOracle() *sp.Record {
	out := emptyRecord()
	for _, w := range s.log {
		out.Clock = out.Clock.Max(w.seen)
	}
	for _, w := range s.log {
		for name, sib := range w.sibs {
			overwritten := false
			for _, o := range s.log {
				if _, writes := o.sibs[name]; writes && o.dot != w.dot && o.seen.Covers(w.dot) {
					overwritten = true
				}
			}
			if !overwritten {
				out.Fields[name] = append(out.Fields[name], sib)
			}
		}
	}
	for name, sibs := range out.Fields {
		sort.Slice(sibs, func(i, j int) bool { return sibs[i].Dot.Less(sibs[j].Dot) })
		out.Fields[name] = sibs
	}
	return out
}

// lwwOracle is the sibling with the greatest (at, by, n), found by sorting.
func lwwOracle(sibs []sp.Sibling) sp.Sibling {
	c := append([]sp.Sibling(nil), sibs...)
	sort.Slice(c, func(i, j int) bool {
		a, b := c[i], c[j]
		if a.At != b.At {
			return a.At > b.At
		}
		if a.By != b.By {
			return a.By > b.By
		}
		return a.N > b.N
	})
	return c[0]
}

// analyzeOracle computes conflicts and delete_edit from the definitions of
// §1, with valueClasses for value equality.
func analyzeOracle(t rapid.TB, r *sp.Record) (conflicts, deleteEdit []string, deleted bool) {
	for name, sibs := range r.Fields {
		if sp.IsReserved(name) {
			continue
		}
		classes := map[int]bool{}
		for _, s := range sibs {
			c, ok := classOf[string(s.Value)]
			if !ok {
				t.Fatalf("value %s of %s is not from the pool", s.Value, name)
			}
			classes[c] = true
		}
		if len(classes) > 1 {
			conflicts = append(conflicts, name)
		}
	}
	if del := r.Fields[sp.FieldDeleted]; len(del) > 0 {
		w := lwwOracle(del)
		deleted = string(w.Value) == "true"
		for name, sibs := range r.Fields {
			if !deleted || sp.IsReserved(name) {
				continue
			}
			for _, s := range sibs {
				if s.Dot != w.Dot && w.Ctx[s.By] < s.N {
					deleteEdit = append(deleteEdit, name)
					break
				}
			}
		}
	}
	sort.Strings(conflicts)
	sort.Strings(deleteEdit)
	return
}

func sameSiblings(a, b []sp.Sibling) bool {
	x := &sp.Record{Clock: sp.Clock{}, Fields: map[string][]sp.Sibling{"f": a}}
	y := &sp.Record{Clock: sp.Clock{}, Fields: map[string][]sp.Sibling{"f": b}}
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return x.Equal(y)
}

func stateJSON(r *sp.Record) string {
	b, _ := json.Marshal(r.State())
	return string(b)
}

// TestGenHistoriesValid: every state a generated history produces passes
// Validate, keeps its siblings sorted by dot and no field without siblings.
func TestGenHistoriesValid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genAnySim.Draw(t, "sim")
		for _, r := range s.snaps {
			if err := sp.Validate(r.State()); err != nil {
				t.Fatalf("generated state refused: %v\n%s", err, stateJSON(r))
			}
			for name, sibs := range r.Fields {
				if len(sibs) == 0 {
					t.Fatalf("field %s without siblings", name)
				}
				for k := 1; k < len(sibs); k++ {
					if !sibs[k-1].Dot.Less(sibs[k].Dot) {
						t.Fatalf("field %s: siblings not sorted by dot", name)
					}
				}
			}
		}
	})
}
