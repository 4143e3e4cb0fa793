package store

import (
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/loadgen"
	"github.com/fieldsync/fieldsync/internal/records"
	bolt "go.etcd.io/bbolt"
)

// TestAppendedRecordsFillTheirPages writes transactions of 500 new ~1.15 KB
// assessments as a push does (record, feed entry, history entry) and
// checks that the buckets growing at their end, records and the history
// log, fill their pages. Split at 90% of a 4 KB page, as they once were,
// two such records filled a page to two thirds, and the file and every
// full pull were a third larger.
func TestAppendedRecordsFillTheirPages(t *testing.T) {
	st, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const dev = "0193a6f4-7c1e-7b55-9a10-00000000000a"
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for range 6 {
		err := st.Update(context.Background(), func(tx records.Tx) error {
			for range 500 {
				at = at.Add(time.Second)
				s, err := loadgen.Assessment(rng, dev, at.UnixMilli())
				if err != nil {
					return err
				}
				next := &records.Stored{State: s, CreatedAt: at, UpdatedAt: at}
				if err := tx.PutRecord(nil, next); err != nil {
					return err
				}
				fields := s.Writes[0].Fields
				h := &records.HistoryEntry{Seq: next.Seq, ReceivedAt: at.Format(time.RFC3339), Actor: dev, Kind: records.KindPush,
					Fields: slices.Sorted(maps.Keys(fields)), Values: fields}
				if err := tx.AppendHistory(s.ID, h); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = st.db.View(func(btx *bolt.Tx) error {
		for _, name := range [][]byte{bRecords, bHistLog} {
			s := btx.Bucket(name).Stats()
			if fill := float64(s.LeafInuse) / float64(s.LeafAlloc); fill < 0.85 {
				t.Errorf("%s: %d records on %d leaf pages, %.0f%% of their bytes used, want at least 85%%", name, s.KeyN, s.LeafPageN+s.LeafOverflowN, 100*fill)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
