package records

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/fieldsync/fieldsync/internal/auth"
)

// SetPreparePath turns the preparation of pushed records before the
// transaction on or off, and returns a function that restores it.
func SetPreparePath(on bool) (restore func()) {
	was := preparePath
	preparePath = on
	return func() { preparePath = was }
}

// LegacyBatchHash is a batch's hash in version 1 (SHA-256), as the answers
// of batches pushed before version 2 were kept with.
func LegacyBatchHash(items []json.RawMessage, caller *auth.Account, batch string) ([]byte, error) {
	decoded, err := (&Service{store: emptyStore{}}).decodeItems(context.Background(), items, caller, batch)
	if err != nil {
		return nil, err
	}
	return legacyBatchHash(decoded)
}

// PagesGivenAhead is how many pull pages were given from pages built
// ahead; PagesHeldAhead how many are held now.
func (s *Service) PagesGivenAhead() int64 { return s.ahead.serving.Load() }

func (s *Service) PagesHeldAhead() int {
	s.ahead.mu.Lock()
	defer s.ahead.mu.Unlock()
	return len(s.ahead.pages)
}

// BuildPage is the wire JSON of the pull page q asks for as caller, built
// now, without pages built ahead.
func (s *Service) BuildPage(ctx context.Context, caller *auth.Account, q PullQuery) ([]byte, error) {
	p, _, err := s.buildPage(ctx, caller, q)
	if err != nil {
		return nil, err
	}
	defer p.Release()
	var b bytes.Buffer
	_, err = p.WriteTo(&b)
	return b.Bytes(), err
}

// WaitPagesAhead waits until the pages being built ahead are built.
func (s *Service) WaitPagesAhead() {
	s.ahead.mu.Lock()
	var pending []chan struct{}
	for _, p := range s.ahead.pages {
		pending = append(pending, p.done)
	}
	s.ahead.mu.Unlock()
	for _, d := range pending {
		<-d
	}
}

// PagesShared is how many encoded pull pages were given again.
func (s *Service) PagesShared() int64 { return s.shared.given.Load() }
