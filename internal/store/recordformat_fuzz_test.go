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
	f.Add(encodeRecordV2(st))
	if ref, err := encodeRecord(oneWrite()); err == nil {
		f.Add(ref)
		f.Add(ref[:len(ref)-40])
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if _, err := decodeHead(v); err != nil {
			return
		}
		st, err := decodeRecord(v)
		if err != nil {
			return
		}
		// What decodes, state included, encodes and decodes to the same.
		again, err := encodeRecord(st)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := decodeRecord(again)
		if err != nil || back.Seq != st.Seq || !back.UpdatedAt.Equal(st.UpdatedAt) || back.State.ID != st.State.ID {
			t.Fatalf("decode(encode(decode(v))) differs: %v", err)
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
