package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

const testActor = "0193a6f4-7c1e-7b55-9a10-00000000000a"

// oneWrite is a stored record of one write, as tablets create them.
func oneWrite() *records.Stored {
	return &records.Stored{
		State: sp.State{ID: "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00", Form: "assessment", Scope: "guelmim-oued-noun", Clock: sp.Clock{testActor: 1},
			Writes: []sp.Write{{By: testActor, N: 1, At: 1000, Fields: map[string]json.RawMessage{
				"head_name": json.RawMessage(`"فاطمة الزهراء"`), "household_size": json.RawMessage(`5`), "gps": json.RawMessage(`{"lat":28.9,"lon":-10.1}`)}}}},
		Seq: 7, CreatedAt: time.UnixMilli(1000), UpdatedAt: time.UnixMilli(2000),
	}
}

// encodeRecordV2 lays a record out as format 2 did: the values object
// always written out.
func encodeRecordV2(st *records.Stored) []byte {
	sum := records.Summarize(sp.Analyze(sp.FromState(st.State)))
	b := []byte{2}
	b = binary.AppendUvarint(b, st.Seq)
	b = binary.AppendVarint(b, ms(st.CreatedAt))
	b = binary.AppendVarint(b, ms(st.UpdatedAt))
	b = binary.AppendVarint(b, ms(st.ConflictSince))
	b = append(b, 0)
	b = appendBytes(b, []byte(sum.Review))
	b = appendBytes(b, []byte(st.State.Form))
	b = appendBytes(b, []byte(st.State.Scope))
	b = appendBytes(b, sum.Values)
	return st.State.AppendJSON(b)
}

// TestRecordValuesKeptOnce checks that a record of one write keeps its
// values once, in its state, and reads back the same as when they were
// written out (format 2, which is still read).
func TestRecordValuesKeptOnce(t *testing.T) {
	st := oneWrite()
	v3, err := encodeRecord(st)
	if err != nil {
		t.Fatal(err)
	}
	v2 := encodeRecordV2(st)
	h, err := decodeHead(v3)
	if err != nil {
		t.Fatal(err)
	}
	if h.flags&flagValuesInState == 0 {
		t.Fatalf("a record of one write does not refer to its state for its values")
	}
	if len(v3) >= len(v2)-len(h.values)+8 {
		t.Errorf("format 3 takes %d bytes, format 2 %d: the values are not kept once", len(v3), len(v2))
	}
	want := `{"gps":{"lat":28.9,"lon":-10.1},"head_name":"فاطمة الزهراء","household_size":5}`
	if string(h.values) != want {
		t.Errorf("values = %s, want %s", h.values, want)
	}
	a, err := decodeRecord(v3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeRecord(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("format 3 reads\n%+v\nformat 2 reads\n%+v", a, b)
	}

	// A record whose visible values are not one write's fields writes them out.
	st.State.Clock[testActor] = 2
	st.State.Writes = append(st.State.Writes, sp.Write{By: testActor, N: 2, At: 2000, Fields: map[string]json.RawMessage{"household_size": json.RawMessage(`6`)}})
	st.Summary = nil
	v, err := encodeRecord(st)
	if err != nil {
		t.Fatal(err)
	}
	if h, err = decodeHead(v); err != nil || h.flags&flagValuesInState != 0 {
		t.Fatalf("two writes: flags %b, %v", h.flags, err)
	}
	if !bytes.Contains(h.values, []byte(`"household_size":6`)) {
		t.Errorf("two writes: values %s", h.values)
	}
}
