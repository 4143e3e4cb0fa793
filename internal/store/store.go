// Package store keeps fieldsync's data in one bbolt file: records, the
// change feed and its transaction log, history, kept batch answers, the
// quarantine and accounts. It is the only package that imports bbolt, and
// the only place that opens transactions.
package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	bolt "go.etcd.io/bbolt"
)

// Bucket names.
var (
	bMeta       = []byte("meta")
	bRecords    = []byte("records")
	bChanges    = []byte("changes")
	bTxLog      = []byte("txlog")
	bHistory    = []byte("history") // schema 1: record id + counter → entry; read, no longer written
	bHistLog    = []byte("history_log")
	bHistIndex  = []byte("history_index")
	bBatches    = []byte("batches")
	bQuarantine = []byte("quarantine")
	bAccounts   = []byte("accounts")
	bTokens     = []byte("tokens")
	bConflicts  = []byte("conflicts")
	bFieldNames = []byte("fieldnames")

	// schema1Buckets are in every fieldsync database, however old.
	schema1Buckets = [][]byte{bMeta, bRecords, bChanges, bTxLog, bHistory, bBatches, bQuarantine, bAccounts, bTokens, bConflicts, bFieldNames}
	// allBuckets are created when a database is opened.
	allBuckets = append(append([][]byte{}, schema1Buckets...), bHistLog, bHistIndex)

	kDBID         = []byte("db_id")
	kLastSeq      = []byte("last_seq")
	kSchema       = []byte("schema")
	kBootstrapped = []byte("bootstrapped")
)

// schemaVersion is the database layout this server writes. Version 2
// keeps history in an append-only log with an index by record (version 1
// keyed it by record, which scattered every push's writes) and records in
// format 3. Version 3 is version 2 whose kept batch answers may carry a
// version 2 batch hash (BLAKE2b, see internal/records): a server that
// knows only SHA-256 would take their retries for reuses of the batch id.
// An older database is upgraded in place when opened (from version 2, by
// writing the number); a server refuses a database newer than it knows.
const schemaVersion = 3

// FileName is the database file's name inside the data directory.
const FileName = "fieldsync.db"

// Options configure Open.
type Options struct {
	// Timeout is how long Open waits for the file lock held by another
	// process; zero means 5 seconds.
	Timeout time.Duration
	// NoSync turns fsync off: for benchmarks of the raw limit only, never
	// for serving (acknowledged data would not survive a power cut).
	NoSync bool
	// OnCommit, if not nil, is told how long each Update took, commit and
	// sync included (for metrics).
	OnCommit func(time.Duration)
}

// Store is the bbolt-backed storage of fieldsync.
type Store struct {
	db       *bolt.DB
	onCommit func(time.Duration)
}

// Compile-time checks that Store is what its consumers need.
var (
	_ records.Store = (*Store)(nil)
	_ auth.Store    = (*Store)(nil)
)

// Open opens (creating if needed) the database in directory dir. It returns
// an error if the directory cannot be created, the file is locked by another
// process past the timeout, or the file is not a fieldsync database.
func Open(dir string, opt Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	if opt.Timeout == 0 {
		opt.Timeout = 5 * time.Second
	}
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{
		Timeout: opt.Timeout, NoSync: opt.NoSync, FreelistType: bolt.FreelistMapType,
		// A large initial map means the file rarely needs remapping, and a
		// remap waits for every read transaction: a long export would
		// otherwise hold up pushes. It reserves address space, not memory.
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", filepath.Join(dir, FileName), err)
	}
	// Group commit: calls arriving while a commit runs share the next one.
	db.MaxBatchSize = 32
	db.MaxBatchDelay = 2 * time.Millisecond
	s := &Store{db: db, onCommit: opt.OnCommit}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// init creates the buckets and, for a new database, its random id.
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("store: create bucket %s: %w", b, err)
			}
		}
		meta := tx.Bucket(bMeta)
		if v := meta.Get(kSchema); v != nil {
			switch version := binary.BigEndian.Uint64(v); {
			case version > schemaVersion:
				return fmt.Errorf("store: schema version %d, this server knows %d at most", version, schemaVersion)
			case version < schemaVersion:
				if err := meta.Put(kSchema, u64(schemaVersion)); err != nil {
					return err
				}
			}
		}
		if meta.Get(kDBID) == nil {
			id := make([]byte, 16)
			if _, err := rand.Read(id); err != nil {
				return err
			}
			if err := meta.Put(kDBID, id); err != nil {
				return err
			}
			if err := meta.Put(kSchema, u64(schemaVersion)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close closes the database. It returns bbolt's error, if any.
func (s *Store) Close() error { return s.db.Close() }

// Path returns the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// Update runs fn in one write transaction, committed and synced to disk
// before it returns. An error from fn rolls everything back.
func (s *Store) Update(ctx context.Context, fn func(records.Tx) error) error {
	return s.update(ctx, s.db.Update, fn)
}

// update runs fn through one of bbolt's write paths (Update, or Batch for
// group commit), closing the transaction's change log before commit and
// timing the commit.
func (s *Store) update(ctx context.Context, run func(func(*bolt.Tx) error) error, fn func(records.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	err := run(func(btx *bolt.Tx) error {
		t := newTx(btx)
		if err := fn(t); err != nil {
			return err
		}
		return t.finish()
	})
	if err == nil && s.onCommit != nil {
		s.onCommit(time.Since(start))
	}
	return err
}

// UpdateGrouped runs fn in a write transaction that concurrent callers may
// share (bbolt's DB.Batch): one commit and one fsync for all of them, each
// answered after it. fn may run more than once (see records.Store).
func (s *Store) UpdateGrouped(ctx context.Context, fn func(records.Tx) error) error {
	return s.update(ctx, s.db.Batch, fn)
}

// CountConflicts returns how many records hold a conflict.
func (s *Store) CountConflicts(ctx context.Context) (int, error) {
	n := 0
	err := s.db.View(func(btx *bolt.Tx) error {
		c := btx.Bucket(bConflicts).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// View runs fn in one consistent read snapshot.
func (s *Store) View(ctx context.Context, fn func(records.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(btx *bolt.Tx) error { return fn(newTx(btx)) })
}

// Check verifies the database file's structure (bbolt's consistency check)
// and fieldsync's own invariants: every change entry points at a record
// whose seq it is, and every record has its change entry. It returns the
// first problems found, joined.
func (s *Store) Check(ctx context.Context) error {
	return s.db.View(func(btx *bolt.Tx) error {
		var errs []error
		for err := range btx.Check() { // drain the channel: Check's goroutine ends with it
			if len(errs) < 20 {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		return checkIndexes(newTx(btx))
	})
}

// checkIndexes verifies what bbolt's check cannot: that the change feed
// and the records agree, and the history log and its index.
func checkIndexes(t *tx) error {
	if err := checkFeed(t); err != nil {
		return err
	}
	return checkHistory(t)
}

func u64(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}
