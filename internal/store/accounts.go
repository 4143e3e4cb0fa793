package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fieldsync/fieldsync/internal/auth"
	bolt "go.etcd.io/bbolt"
)

func getAccount(btx *bolt.Tx, id string) (*auth.Account, error) {
	k, ok := idKey(id)
	if !ok {
		return nil, auth.ErrNotFound
	}
	v := btx.Bucket(bAccounts).Get(k)
	if v == nil {
		return nil, auth.ErrNotFound
	}
	var a auth.Account
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, fmt.Errorf("store: decode account: %w", err)
	}
	return &a, nil
}

func putAccount(btx *bolt.Tx, a *auth.Account) error {
	k, ok := idKey(a.ID)
	if !ok {
		return fmt.Errorf("store: account id is not a UUID")
	}
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return btx.Bucket(bAccounts).Put(k, v)
}

// CreateAccount implements auth.Store.
func (s *Store) CreateAccount(ctx context.Context, a *auth.Account) error {
	return s.db.Update(func(btx *bolt.Tx) error { return createAccount(btx, a) })
}

func createAccount(btx *bolt.Tx, a *auth.Account) error {
	k, _ := idKey(a.ID)
	if btx.Bucket(bAccounts).Get(k) != nil {
		return fmt.Errorf("store: account %s exists", a.ID)
	}
	if btx.Bucket(bTokens).Get(a.TokenHash) != nil {
		return fmt.Errorf("store: token already in use")
	}
	if err := putAccount(btx, a); err != nil {
		return err
	}
	return btx.Bucket(bTokens).Put(a.TokenHash, k)
}

// CreateFirstAdmin creates the first admin account, once in the life of a
// database: it reports false, and creates nothing, if it was done before.
func (s *Store) CreateFirstAdmin(ctx context.Context, a *auth.Account) (bool, error) {
	created := false
	err := s.db.Update(func(btx *bolt.Tx) error {
		meta := btx.Bucket(bMeta)
		if meta.Get(kBootstrapped) != nil {
			return nil
		}
		if err := createAccount(btx, a); err != nil {
			return err
		}
		created = true
		return meta.Put(kBootstrapped, []byte{1})
	})
	return created, err
}

// AccountByTokenHash implements auth.Store.
func (s *Store) AccountByTokenHash(ctx context.Context, hash []byte) (*auth.Account, error) {
	var a *auth.Account
	err := s.db.View(func(btx *bolt.Tx) error {
		id := btx.Bucket(bTokens).Get(hash)
		if id == nil {
			return auth.ErrNotFound
		}
		var err error
		a, err = getAccount(btx, keyID(id))
		return err
	})
	return a, err
}

// Account implements auth.Store.
func (s *Store) Account(ctx context.Context, id string) (*auth.Account, error) {
	var a *auth.Account
	err := s.db.View(func(btx *bolt.Tx) error {
		var err error
		a, err = getAccount(btx, id)
		return err
	})
	return a, err
}

// RevokeAccount implements auth.Store.
func (s *Store) RevokeAccount(ctx context.Context, id string) error {
	return s.db.Update(func(btx *bolt.Tx) error {
		a, err := getAccount(btx, id)
		if err != nil {
			return err
		}
		if len(a.TokenHash) > 0 {
			if err := btx.Bucket(bTokens).Delete(a.TokenHash); err != nil {
				return err
			}
		}
		a.Revoked = true
		a.TokenHash = nil
		return putAccount(btx, a)
	})
}

// Accounts implements auth.Store.
func (s *Store) Accounts(ctx context.Context) ([]*auth.Account, error) {
	var out []*auth.Account
	err := s.db.View(func(btx *bolt.Tx) error {
		return btx.Bucket(bAccounts).ForEach(func(k, v []byte) error {
			var a auth.Account
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("store: decode account: %w", err)
			}
			out = append(out, &a)
			return nil
		})
	})
	return out, err
}

// Account implements records.ReadTx: nil when there is no such account.
func (t *tx) Account(id string) (*auth.Account, error) {
	a, err := getAccount(t.btx, id)
	if err == auth.ErrNotFound {
		return nil, nil
	}
	return a, err
}
