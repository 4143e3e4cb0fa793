package loadgen

import (
	"context"
	"encoding/json"
	"testing"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// The generated records are valid push items of about 1 KB.
func TestRecordsAreValidAndAboutOneKB(t *testing.T) {
	dev := uuid.Must(uuid.NewV7()).String()
	batches, err := makeBatches(context.Background(), 1, []string{dev}, 2, 50)
	if err != nil {
		t.Fatal(err)
	}
	var decoded int64
	for _, b := range batches {
		req, err := sp.DecodePush(b.body)
		if err != nil {
			t.Fatal(err)
		}
		if req.Device != dev || len(req.Records) != b.records {
			t.Fatalf("push of %s with %d items, want %s and %d", req.Device, len(req.Records), dev, b.records)
		}
		for _, raw := range req.Records {
			decoded += int64(len(raw))
			var st sp.State
			if err := json.Unmarshal(raw, &st); err != nil {
				t.Fatal(err)
			}
			if u, err := uuid.Parse(st.ID); err != nil || u.Version() != 7 {
				t.Errorf("id %s: not a UUIDv7 (%v)", st.ID, err)
			}
			if _, err := sp.DecodeItem(raw); err != nil {
				t.Errorf("item %s: %v", st.ID, err)
			}
		}
	}
	if n := datasetBytes(batches); n != decoded {
		t.Errorf("datasetBytes = %d, the items decoded hold %d", n, decoded)
	}
	if avg := decoded / 100; avg < 800 || avg > 1400 {
		t.Errorf("a record is %d bytes as JSON, want about 1 KB", avg)
	}
}
