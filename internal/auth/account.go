// Package auth holds fieldsync's accounts, roles and scopes, and the tokens
// that stand for them: random bearer tokens, stored only as SHA-256 hashes.
package auth

import (
	"context"
	"time"
)

// Role says what an account may do (PROTOCOL.md §6).
type Role string

// The roles.
const (
	// RoleDevice pushes and pulls in its scopes; its id is its actor id.
	RoleDevice Role = "device"
	// RoleSupervisor reads, pulls, lists and resolves conflicts and reviews in its scopes.
	RoleSupervisor Role = "supervisor"
	// RoleHQ reads, pulls and exports everywhere; it never writes.
	RoleHQ Role = "hq"
	// RoleAdmin manages accounts and may do everything.
	RoleAdmin Role = "admin"
)

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool {
	switch r {
	case RoleDevice, RoleSupervisor, RoleHQ, RoleAdmin:
		return true
	}
	return false
}

// Account is a device or a user. Its id is a UUID and, for devices and for
// users who write (supervisors resolving or reviewing), its actor id in
// record clocks.
type Account struct {
	ID        string    `json:"id"`
	Role      Role      `json:"role"`
	Name      string    `json:"name"` // a device's label or a user's name
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked,omitempty"`
	TokenHash []byte    `json:"token_hash,omitempty"`
}

// AllScopes reports whether the account sees every scope (hq and admin).
func (a *Account) AllScopes() bool { return a.Role == RoleHQ || a.Role == RoleAdmin }

// InScope reports whether the account may see records of scope s.
func (a *Account) InScope(s string) bool {
	if a.AllScopes() {
		return true
	}
	for _, x := range a.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// IsDevice reports whether the account is a device.
func (a *Account) IsDevice() bool { return a.Role == RoleDevice }

type ctxKey struct{}

// WithAccount returns a context that carries the caller's account.
func WithAccount(ctx context.Context, a *Account) context.Context {
	return context.WithValue(ctx, ctxKey{}, a)
}

// FromContext returns the caller's account, or nil if the context has none.
func FromContext(ctx context.Context) *Account {
	a, _ := ctx.Value(ctxKey{}).(*Account)
	return a
}
