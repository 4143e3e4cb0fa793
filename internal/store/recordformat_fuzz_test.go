package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// FuzzDecodeRecord: the on-disk record decoder never panics on any bytes,
// and what encodeRecord writes decodes back to the same record.
func FuzzDecodeRecord(f *testing.F) {
	const a = "0193a6f4-7c1e-7b55-9a10-00000000000a"
	st := &records.Stored{
		State: sp.State{ID: "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00", Form: "assessment", Scope: "guelmim-oued-noun", Clock: sp.Clock{a: 2},
			Writes: []sp.Write{{By: a, N: 2, At: 1000, Fields: map[string]json.RawMessage{"head_name": json.RawMessage(`"فاطمة"`), "n": json.RawMessage(`5`)}}}},
		Seq: 7, CreatedAt: time.UnixMilli(1000), UpdatedAt: time.UnixMilli(2000),
	}
	good, err := encodeRecord(st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{recordFormat})
	f.Add([]byte{recordFormat, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		h, err := decodeHead(v)
		if err != nil {
			return
		}
		if _, err := decodeRecord(v); err != nil {
			return
		}
		// A head that decodes re-encodes its parts as they were.
		if len(h.form) > len(v) || len(h.state) > len(v) {
			t.Fatalf("slices beyond the input")
		}
	})
	// The round trip, outside the fuzz loop's arbitrary bytes.
	back, err := decodeRecord(good)
	if err != nil {
		f.Fatal(err)
	}
	again, err := encodeRecord(back)
	if err != nil || !bytes.Equal(again, good) {
		f.Fatalf("encode(decode(x)) != x: %v", err)
	}
}
