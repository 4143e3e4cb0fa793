package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole database to w from one read
// transaction, while writes go on. size is called with the copy's length
// before the first byte. It returns the bytes written and the writer's or
// bbolt's error.
func (s *Store) Backup(ctx context.Context, w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// VerifyFile opens a database file read-only and checks that it is a
// fieldsync database that passes Check. It returns an error saying what is
// wrong otherwise.
func VerifyFile(ctx context.Context, path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	return db.View(func(btx *bolt.Tx) error {
		for _, b := range schema1Buckets {
			if btx.Bucket(b) == nil {
				return fmt.Errorf("%s is not a fieldsync database (bucket %s missing)", path, b)
			}
		}
		if btx.Bucket(bMeta).Get(kDBID) == nil {
			return fmt.Errorf("%s is not a fieldsync database (no database id)", path)
		}
		var errs []error
		for err := range btx.Check() {
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

// Restore puts the backup file from in place as the database of dir. The
// server must be stopped: Restore fails if the current database is locked.
// The current database, if any, is kept beside it as
// fieldsync.db.before-restore-<time>. It returns that path ("" if there
// was none).
func Restore(ctx context.Context, dir, from string) (string, error) {
	if err := VerifyFile(ctx, from); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	target := filepath.Join(dir, FileName)
	kept := ""
	if _, err := os.Stat(target); err == nil {
		// Taking the lock proves no server is running on it.
		db, err := bolt.Open(target, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			return "", fmt.Errorf("the database in %s is in use (stop the server first): %w", dir, err)
		}
		db.Close()
		kept = target + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(target, kept); err != nil {
			return "", err
		}
	}
	tmp := target + ".restoring"
	if err := copyFile(from, tmp); err != nil {
		os.Remove(tmp)
		return kept, err
	}
	if err := os.Rename(tmp, target); err != nil {
		return kept, err
	}
	return kept, syncDir(dir)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
