package syncproto_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"testing"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// vectorCase is one line of merge.jsonl (format in shared/vectors/README.md).
type vectorCase struct {
	Name   string     `json:"name"`
	Op     string     `json:"op"`
	A      *sp.State  `json:"a"`
	B      *sp.State  `json:"b"`
	Server *sp.State  `json:"server"`
	Item   *sp.State  `json:"item"`
	Want   vectorWant `json:"want"`
}

type vectorWant struct {
	State      sp.State                   `json:"state"`
	Visible    map[string]json.RawMessage `json:"visible"`
	Conflicts  []string                   `json:"conflicts"`
	DeleteEdit []string                   `json:"delete_edit"`
	Deleted    bool                       `json:"deleted"`
}

const vectorsCopy = "../testdata/vectors/merge.jsonl"

// The project keeps a copy of the shared vectors; when the shared folder is
// beside the checkout, the copy must not have drifted from it.
func TestVectorsCopyIsCurrent(t *testing.T) {
	shared, err := os.ReadFile("../../shared/vectors/merge.jsonl")
	if err != nil {
		t.Skip("shared/ not beside the checkout:", err)
	}
	ours, err := os.ReadFile(vectorsCopy)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, ours) {
		t.Fatal("testdata/vectors/merge.jsonl differs from ../shared/vectors/merge.jsonl: copy it again")
	}
}

func TestMergeVectors(t *testing.T) {
	f, err := os.Open(vectorsCopy)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		var c vectorCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		n++
		t.Run(c.Name, func(t *testing.T) { runVector(t, c) })
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("only %d vectors read", n)
	}
}

func runVector(t *testing.T, c vectorCase) {
	var got *sp.Record
	switch c.Op {
	case "join":
		mustValid(t, *c.A)
		mustValid(t, *c.B)
		got = sp.Join(sp.FromState(*c.A), sp.FromState(*c.B))
		// The join is symmetric: the other order gives the same state.
		if other := sp.Join(sp.FromState(*c.B), sp.FromState(*c.A)); !other.Equal(got) {
			t.Errorf("join is not commutative on this case")
		}
	case "push":
		mustValid(t, *c.Item)
		var server *sp.Record
		if c.Server != nil {
			mustValid(t, *c.Server)
			server = sp.FromState(*c.Server)
		}
		device := pushingDevice(*c.Item, server)
		if err := sp.CheckItem(*c.Item, server, device, false); err != nil {
			t.Fatalf("item refused: %v", err)
		}
		got = sp.ApplyPush(server, sp.FromState(*c.Item))
	default:
		t.Fatalf("unknown op %q", c.Op)
	}
	want := sp.FromState(c.Want.State)
	if !got.Equal(want) {
		gj, _ := json.Marshal(got.State())
		wj, _ := json.Marshal(c.Want.State)
		t.Fatalf("state\n got  %s\n want %s", gj, wj)
	}
	a := sp.Analyze(got)
	if len(a.Visible) != len(c.Want.Visible) {
		t.Errorf("visible has %d fields, want %d", len(a.Visible), len(c.Want.Visible))
	}
	for k, v := range c.Want.Visible {
		if !sp.EqualValues(a.Visible[k], v) {
			t.Errorf("visible[%s] = %s, want %s", k, a.Visible[k], v)
		}
	}
	if !sameStrings(a.Conflicts, c.Want.Conflicts) {
		t.Errorf("conflicts = %v, want %v", a.Conflicts, c.Want.Conflicts)
	}
	if !sameStrings(a.DeleteEdit, c.Want.DeleteEdit) {
		t.Errorf("delete_edit = %v, want %v", a.DeleteEdit, c.Want.DeleteEdit)
	}
	if a.Deleted != c.Want.Deleted {
		t.Errorf("deleted = %v, want %v", a.Deleted, c.Want.Deleted)
	}
}

func mustValid(t *testing.T, s sp.State) {
	t.Helper()
	if err := sp.Validate(s); err != nil {
		t.Fatalf("input refused: %v", err)
	}
}

func sameStrings(a, b []string) bool {
	a = append([]string{}, a...)
	b = append([]string{}, b...)
	sort.Strings(a)
	sort.Strings(b)
	return reflect.DeepEqual(a, b)
}

// pushingDevice is the actor a push vector's item comes from: the one whose
// count is above the server's, or else the first writer.
func pushingDevice(item sp.State, server *sp.Record) string {
	for a, n := range item.Clock {
		if server == nil || n > server.Clock[a] {
			return a
		}
	}
	return item.Writes[0].By
}
