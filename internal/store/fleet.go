package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fieldsync/fieldsync/internal/fleet"
	bolt "go.etcd.io/bbolt"
)

var bFleet = []byte("fleet")

var _ fleet.Store = (*Store)(nil)

// LoadFleet implements fleet.Store.
func (s *Store) LoadFleet(ctx context.Context) (map[string]fleet.Stats, error) {
	out := map[string]fleet.Stats{}
	err := s.db.View(func(btx *bolt.Tx) error {
		b := btx.Bucket(bFleet)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var st fleet.Stats
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("store: decode fleet figures: %w", err)
			}
			out[string(k)] = st
			return nil
		})
	})
	return out, err
}

// SaveFleet implements fleet.Store.
func (s *Store) SaveFleet(ctx context.Context, m map[string]fleet.Stats) error {
	return s.db.Update(func(btx *bolt.Tx) error {
		b, err := btx.CreateBucketIfNotExists(bFleet)
		if err != nil {
			return err
		}
		for id, st := range m {
			v, err := json.Marshal(st)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(id), v); err != nil {
				return err
			}
		}
		return nil
	})
}
