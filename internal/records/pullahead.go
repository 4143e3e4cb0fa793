package records

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
)

// A full pull (HQ's, or a tablet's first) walks the feed page after page,
// each request sent once the last answer is read, so the server's work
// for a page and the client's reading of the one before take turns.
// pullAhead builds a walker's next page while the current one is on its
// way.
//
// A page built ahead is the page Pull would build when it is asked for:
//   - it is given only to the account it was built for, with the same
//     role and scopes (what InScope reads), asking for the same cursor,
//     limit and form;
//   - only while the feed has not moved since it was built (the same
//     Position: every change a pull can see moves the feed's last seq).
//
// Anything else and it is dropped, and the page is built as usual. A page
// is built ahead only for a caller walking the feed (it asked for the
// cursor it was last given), one per account, aheadMax in all, and it is
// dropped if not asked for within aheadTTL: one-page syncs, the common
// case for tablets, cost nothing.
type pullAhead struct {
	mu      sync.Mutex
	pages   map[string]*aheadPage // by account id
	given   map[string]string     // the cursor each account was last given
	serving atomic.Int64          // pages given from here, for tests
}

const (
	aheadMax   = 4
	aheadTTL   = 30 * time.Second
	maxWalkers = 4096 // accounts whose last cursor is remembered
)

// aheadKey is everything a page depends on besides the feed's position.
type aheadKey struct {
	account, role, scopes string
	since, form           string
	limit                 int
}

func keyOf(caller *auth.Account, q PullQuery) aheadKey {
	return aheadKey{account: caller.ID, role: string(caller.Role), scopes: strings.Join(caller.Scopes, "\x00"),
		since: q.Since, form: q.Form, limit: q.Limit}
}

// aheadPage is a page being built, or built, ahead.
type aheadPage struct {
	key  aheadKey
	done chan struct{} // closed once at, page and err are set
	at   Position
	page *PullPage
	err  error
}

// take removes and returns the page built ahead for key, waiting for it
// if it is still being built; nil if there is none. A page the account
// holds for another query is dropped: the account has moved on from the
// walk it was built for, and a new walk may have its own.
func (a *pullAhead) take(ctx context.Context, key aheadKey) *aheadPage {
	a.mu.Lock()
	p := a.pages[key.account]
	if p != nil {
		delete(a.pages, key.account)
	}
	a.mu.Unlock()
	if p == nil {
		return nil
	}
	if p.key != key {
		go func() { <-p.done; p.drop() }()
		return nil
	}
	select {
	case <-p.done:
		return p
	case <-ctx.Done():
		go func() { <-p.done; p.drop() }()
		return nil
	}
}

// walking records that the caller was given cursor for key's query, and
// reports whether it had asked for the cursor it was given before.
func (a *pullAhead) walking(key aheadKey, cursor string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.given == nil || len(a.given) >= maxWalkers {
		a.given = map[string]string{}
	}
	walk := key.since != "" && a.given[key.account] == key.since
	a.given[key.account] = cursor
	return walk
}

// start begins building the page for key (its since, the cursor just
// given) with build, unless the account has one already or aheadMax pages
// are held.
func (a *pullAhead) start(key aheadKey, build func() (*PullPage, Position, error)) {
	a.mu.Lock()
	if a.pages == nil {
		a.pages = map[string]*aheadPage{}
	}
	if _, ok := a.pages[key.account]; ok || len(a.pages) >= aheadMax {
		a.mu.Unlock()
		return
	}
	p := &aheadPage{key: key, done: make(chan struct{})}
	a.pages[key.account] = p
	a.mu.Unlock()
	go func() {
		p.page, p.at, p.err = build()
		close(p.done)
	}()
	time.AfterFunc(aheadTTL, func() {
		a.mu.Lock()
		if a.pages[key.account] != p {
			a.mu.Unlock()
			return
		}
		delete(a.pages, key.account)
		a.mu.Unlock()
		<-p.done
		p.drop()
	})
}

// drop releases the page's buffer.
func (p *aheadPage) drop() {
	if p.page != nil {
		p.page.Release()
	}
}
