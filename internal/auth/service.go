package auth

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// Store is what the account service needs from storage.
type Store interface {
	// CreateAccount stores a new account and its token hash.
	CreateAccount(ctx context.Context, a *Account) error
	// AccountByTokenHash returns the account whose live token has this hash,
	// or ErrNotFound.
	AccountByTokenHash(ctx context.Context, hash []byte) (*Account, error)
	// Account returns an account by id, or ErrNotFound.
	Account(ctx context.Context, id string) (*Account, error)
	// RevokeAccount marks the account revoked and forgets its token hash;
	// ErrNotFound if there is no such account.
	RevokeAccount(ctx context.Context, id string) error
	// Accounts lists every account.
	Accounts(ctx context.Context) ([]*Account, error)
}

// ErrNotFound is returned by a Store for an unknown account or token.
var ErrNotFound = errors.New("auth: not found")

// Limits on account input.
const (
	MaxNameLen = 200
	MaxScopes  = 1000
)

// Service manages accounts and authenticates tokens.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns an account service over store. now may be nil.
func NewService(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// Authenticate returns the account of a bearer token. It returns an
// *sp.Error with CodeUnauthorized for an unknown or revoked token.
func (s *Service) Authenticate(ctx context.Context, token string) (*Account, error) {
	if token == "" || len(token) > 512 {
		return nil, sp.Errorf(sp.CodeUnauthorized, "a valid bearer token is required")
	}
	h := HashToken(token)
	a, err := s.store.AccountByTokenHash(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, sp.Errorf(sp.CodeUnauthorized, "unknown or revoked token")
	}
	if err != nil {
		return nil, err
	}
	if a.Revoked || !SameHash(a.TokenHash, h) {
		return nil, sp.Errorf(sp.CodeUnauthorized, "unknown or revoked token")
	}
	return a, nil
}

// Create makes and stores a new account with a fresh token and returns both;
// the token is never stored and cannot be shown again. Errors as
// NewAccount, and the store's.
func (s *Service) Create(ctx context.Context, role Role, name string, scopes []string) (*Account, string, error) {
	a, token, err := s.NewAccount(role, name, scopes, "")
	if err != nil {
		return nil, "", err
	}
	if err := s.store.CreateAccount(ctx, a); err != nil {
		return nil, "", err
	}
	return a, token, nil
}

// NewAccount makes a new account without storing it. token may be given
// (the first admin's, from the environment); empty makes a random one. It
// returns an *sp.Error with CodeBadRequest for a bad role, name or scope.
func (s *Service) NewAccount(role Role, name string, scopes []string, token string) (*Account, string, error) {
	if !role.Valid() {
		return nil, "", sp.Errorf(sp.CodeBadRequest, "role: must be device, supervisor, hq or admin")
	}
	if len(name) > MaxNameLen || !utf8.ValidString(name) {
		return nil, "", sp.Errorf(sp.CodeBadRequest, "name: at most %d bytes of UTF-8", MaxNameLen)
	}
	if len(scopes) > MaxScopes {
		return nil, "", sp.Errorf(sp.CodeBadRequest, "scopes: at most %d", MaxScopes)
	}
	seen := map[string]bool{}
	clean := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		if !sp.IsSlug(sc) {
			return nil, "", sp.Errorf(sp.CodeBadRequest, "scope %q: must match [a-z0-9_-]{1,64}", cut(sc))
		}
		if !seen[sc] {
			seen[sc] = true
			clean = append(clean, sc)
		}
	}
	if (role == RoleDevice || role == RoleSupervisor) && len(clean) == 0 {
		return nil, "", sp.Errorf(sp.CodeBadRequest, "scopes: a %s needs at least one scope", role)
	}
	var hash []byte
	if token == "" {
		token, hash = NewToken()
	} else {
		hash = HashToken(token)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, "", err
	}
	if name == "" { // a label is for people; without one, the role and the id's end
		name = string(role) + " " + id.String()[len(id.String())-6:]
	}
	a := &Account{ID: id.String(), Role: role, Name: name, Scopes: clean, CreatedAt: s.now().UTC(), TokenHash: hash}
	return a, token, nil
}

// Revoke revokes an account's token at once. It returns an *sp.Error with
// CodeNotFound for an unknown id.
func (s *Service) Revoke(ctx context.Context, id string) error {
	err := s.store.RevokeAccount(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return sp.Errorf(sp.CodeNotFound, "no device or user with this id")
	}
	return err
}

// Account returns an account by id; an *sp.Error with CodeNotFound if none.
func (s *Service) Account(ctx context.Context, id string) (*Account, error) {
	a, err := s.store.Account(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, sp.Errorf(sp.CodeNotFound, "no device or user with this id")
	}
	return a, err
}

// Accounts lists every account.
func (s *Service) Accounts(ctx context.Context) ([]*Account, error) { return s.store.Accounts(ctx) }

func cut(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
