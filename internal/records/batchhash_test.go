package records

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/fieldsync/fieldsync/internal/auth"
)

// TestBatchHashIsStable pins the hash of a batch: hashes are kept with
// batch answers, so a retry after an upgrade must hash the same. It also
// holds the shortcut for items of one write (names known sorted) to the
// general encoding.
func TestBatchHashIsStable(t *testing.T) {
	const dev = "0193a6f4-7c1e-7b55-9a10-00000000000a"
	items := []json.RawMessage{
		json.RawMessage(`{"id":"0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00","form":"assessment","scope":"north","clock":{"` + dev + `":1},"writes":[{"by":"` + dev + `","n":1,"at":1000,"fields":{"gps":{"lon":-10.1,"lat":28.9},"head_name":"فاطمة","household_size":5.0}}]}`),
		json.RawMessage(`{"id":"0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a01","form":"assessment","scope":"north","clock":{"` + dev + `":2},"writes":[{"by":"` + dev + `","n":2,"at":2000,"fields":{"b":1}},{"by":"` + dev + `","n":1,"at":1000,"fields":{"a":"x","b":0}}]}`),
		json.RawMessage(`{"id":"not a uuid"}`),
	}
	caller := &auth.Account{ID: dev, Role: auth.RoleDevice, Scopes: []string{"north"}}
	decoded, err := (&Service{store: emptyStore{}}).decodeItems(context.Background(), items, caller, "5b0e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d")
	if err != nil {
		t.Fatal(err)
	}
	if decoded[0].fresh == nil || decoded[0].fresh.names == nil {
		t.Fatal("the item of one write was not prepared with its names")
	}
	for i, it := range decoded {
		if !it.parsed {
			continue
		}
		withNames, err := appendCanonicalState(nil, it.state, it.fresh.namesOrNil())
		if err != nil {
			t.Fatal(err)
		}
		general, err := appendCanonicalState(nil, it.state, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(withNames, general) {
			t.Errorf("item %d: the canonical form with known names differs from the general one", i)
		}
	}
	// Version 1, as fieldsync computed it before this test: answers kept
	// with it must still be matched by retries.
	legacy, err := legacyBatchHash(decoded)
	if err != nil {
		t.Fatal(err)
	}
	const wantV1 = "991d9795b65ca624c80396798f9ae8b5730e12ce61b44f236dd1b683115a14a3"
	if got := hex.EncodeToString(legacy); got != wantV1 {
		t.Errorf("version 1 batch hash = %s, want %s: a changed hash makes retries of stored batches look reused", got, wantV1)
	}
	h, err := batchHash(decoded)
	if err != nil {
		t.Fatal(err)
	}
	const wantV2 = "02591adaf253803f55ccc3ceda33b401bfd519706e83e09fd9684fe9225ff9007c" // as version 2 was first computed
	if got := hex.EncodeToString(h); got != wantV2 {
		t.Errorf("version 2 batch hash = %s, want %s: a changed hash makes retries of stored batches look reused", got, wantV2)
	}

	// sameBatch compares in the version of the hash kept.
	other, err := (&Service{store: emptyStore{}}).decodeItems(context.Background(), items[:2], caller, "5b0e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d")
	if err != nil {
		t.Fatal(err)
	}
	otherHash, err := batchHash(other)
	if err != nil {
		t.Fatal(err)
	}
	otherLegacy, err := legacyBatchHash(other)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		kept []byte
		want bool
	}{
		{"version 2, same items", h, true},
		{"version 1, same items", legacy, true},
		{"version 2, other items", otherHash, false},
		{"version 1, other items", otherLegacy, false},
	} {
		if got, err := sameBatch(tc.kept, h, decoded); err != nil || got != tc.want {
			t.Errorf("sameBatch (%s) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// emptyStore is a store that holds no record: only View is served.
type emptyStore struct{ Store }

func (emptyStore) View(_ context.Context, fn func(ReadTx) error) error { return fn(noRecords{}) }

// noRecords is a snapshot without records.
type noRecords struct{ ReadTx }

func (noRecords) Record(string) (*Stored, error) { return nil, nil }
