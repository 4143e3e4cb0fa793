package records

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
)

// Pages shared between callers. When the tablets of a region sync at
// once (the end of a field day, a rollout), they ask for the same pages:
// the same cursor, limit and form, with the same scopes. Building a page
// and compressing it is most of what a sync costs the server, so the
// encoded pages asked for last are kept and given again.
//
// A kept page is given only to a caller of exactly the role and scopes it
// was built for, asking for the same cursor, limit, form and encoding,
// and only while the feed would still give the same page (pageStamp):
// every change of a record takes a new seq and deletes its old change
// entry, so a page that stopped before the end of the feed is the same
// while the feed holds as many changes up to its last as it did; one that
// reached the end is the same while the feed's last seq is.
//
// Callers who ask for a page while it is being built wait for it, so a
// rush of tablets builds it once. A caller who then finds that the page no
// longer gives what the feed would builds its own.

const (
	sharedMax      = 16      // pages kept
	sharedMaxBytes = 8 << 20 // their encoded bytes
	sharedTTL      = time.Minute
)

// pageStamp is what a page depends on in the feed.
type pageStamp struct {
	at          Position // the feed's position when the page was built
	since, last uint64   // the page covers the changes after since, up to last
	changes     int      // how many changes the feed held in (since, last]
	more        bool     // the page stopped before the end of the feed
}

// sharedKey is everything besides the feed that a page depends on.
type sharedKey struct {
	role, scopes          string
	since, form, encoding string
	limit                 int
}

func sharedKeyOf(caller *auth.Account, q PullQuery, encoding string) sharedKey {
	return sharedKey{role: string(caller.Role), scopes: strings.Join(caller.Scopes, "\x00"),
		since: q.Since, form: q.Form, encoding: encoding, limit: q.Limit}
}

// sharedPage is an encoded page being built, or built.
type sharedPage struct {
	done  chan struct{} // closed once body, stamp and err are set
	body  EncodedPage
	stamp pageStamp
	err   error
	built time.Time
	kept  bool // its bytes are counted in sharedPages.bytes
}

// sharedPages are the encoded pages kept.
type sharedPages struct {
	mu    sync.Mutex
	pages map[sharedKey]*sharedPage
	bytes int
	// given counts the pages given again.
	given atomic.Int64
}

// claim returns the page kept or being built for key, or, with mine
// true, a new one the caller must build and finish.
func (c *sharedPages) claim(key sharedKey, now time.Time) (p *sharedPage, mine bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pages[key]; p != nil {
		select {
		case <-p.done:
			if p.err == nil && now.Sub(p.built) < sharedTTL {
				return p, false
			}
			c.removeLocked(key, p)
		default:
			return p, false // being built
		}
	}
	if c.pages == nil {
		c.pages = map[sharedKey]*sharedPage{}
	}
	if len(c.pages) >= sharedMax {
		c.evictLocked()
	}
	p = &sharedPage{done: make(chan struct{})}
	c.pages[key] = p
	return p, true
}

// finish sets what the page built for key is and wakes its waiters. A page
// that failed, or is too large to keep, is not kept.
func (c *sharedPages) finish(key sharedKey, p *sharedPage, body EncodedPage, stamp pageStamp, err error, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p.body, p.stamp, p.err, p.built = body, stamp, err, now
	close(p.done)
	if c.pages[key] != p {
		return // removed meanwhile
	}
	if err != nil || len(body.Body) > sharedMaxBytes/4 {
		delete(c.pages, key)
		return
	}
	p.kept = true
	c.bytes += len(body.Body)
	for c.bytes > sharedMaxBytes && c.evictLocked() {
	}
}

// drop removes the page kept for key if it is p: it no longer gives what
// the feed would.
func (c *sharedPages) drop(key sharedKey, p *sharedPage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(key, p)
}

func (c *sharedPages) removeLocked(key sharedKey, p *sharedPage) {
	if c.pages[key] != p {
		return
	}
	delete(c.pages, key)
	if p.kept {
		c.bytes -= len(p.body.Body)
	}
}

// evictLocked removes the page built longest ago (being built: never),
// and reports whether it removed one.
func (c *sharedPages) evictLocked() bool {
	var oldKey sharedKey
	var old *sharedPage
	for k, p := range c.pages {
		select {
		case <-p.done:
		default:
			continue
		}
		if old == nil || p.built.Before(old.built) {
			oldKey, old = k, p
		}
	}
	if old == nil {
		return false
	}
	c.removeLocked(oldKey, old)
	return true
}

// EncodedPage is a pull page as it goes on the wire.
type EncodedPage struct {
	Body   []byte
	Coding string // its content coding ("zstd", "gzip"), "" for none
}

// PullEncoded is Pull for a caller who takes the page as encode writes it
// for the content coding named by encoding (encode may leave a small page
// as it is): the page is one kept for callers given the same page, or is
// built, encoded and kept. It returns Pull's errors and encode's, and
// ctx's if it ends while the page is being built for another caller.
func (s *Service) PullEncoded(ctx context.Context, caller *auth.Account, q PullQuery, encoding string, encode func(*PullPage) (EncodedPage, error)) (EncodedPage, error) {
	if err := q.check(); err != nil {
		return EncodedPage{}, err
	}
	key := sharedKeyOf(caller, q, encoding)
	p, mine := s.shared.claim(key, s.now())
	if mine {
		page, stamp, err := s.pullAndEncode(ctx, caller, q, encode)
		s.shared.finish(key, p, page, stamp, err, s.now())
		return page, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return EncodedPage{}, ctx.Err()
	}
	if p.err == nil && s.stillGives(ctx, p.stamp) {
		s.shared.given.Add(1)
		return p.body, nil
	}
	// The feed has moved on (or the build failed): this caller builds its
	// own page, which the next caller may not be given either.
	s.shared.drop(key, p)
	page, _, err := s.pullAndEncode(ctx, caller, q, encode)
	return page, err
}

// pullAndEncode builds the page q asks for and encodes it.
func (s *Service) pullAndEncode(ctx context.Context, caller *auth.Account, q PullQuery, encode func(*PullPage) (EncodedPage, error)) (EncodedPage, pageStamp, error) {
	page, err := s.Pull(ctx, caller, q)
	if err != nil {
		return EncodedPage{}, pageStamp{}, err
	}
	defer page.Release()
	enc, err := encode(page)
	return enc, page.stamp, err
}

// stillGives reports whether the feed, now, gives the page st stamps.
func (s *Service) stillGives(ctx context.Context, st pageStamp) bool {
	same := false
	err := s.store.View(ctx, func(tx ReadTx) error {
		now := tx.Position()
		if now.DBID != st.at.DBID {
			return nil
		}
		if !st.more {
			same = now.LastSeq == st.at.LastSeq
			return nil
		}
		n, err := tx.CountChanges(st.since, st.last)
		same = n == st.changes
		return err
	})
	return err == nil && same
}
