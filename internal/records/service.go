package records

import (
	"log/slog"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"golang.org/x/sync/semaphore"
)

// DefaultPushInFlight is how many pushed records are decoded and applied
// at once unless Options say otherwise: two full batches, or eight of 500.
const DefaultPushInFlight = 2 * sp.MaxBatchItems

// Options configure a Service.
type Options struct {
	// Now is the server clock; nil means time.Now.
	Now func() time.Time
	// Logger receives operational logs; never field values.
	Logger *slog.Logger
	// PushInFlight bounds the records of the pushes being decoded and
	// applied at once (a push counts its items); further pushes wait their
	// turn with only their body in memory. 0 means DefaultPushInFlight.
	PushInFlight int
}

// Service is the record service.
type Service struct {
	store Store
	now   func() time.Time
	log   *slog.Logger
	// pushing admits pushes by their item counts (Options.PushInFlight).
	pushing  *semaphore.Weighted
	inFlight int64
	// ahead builds a walking caller's next pull page early (pullahead.go).
	ahead pullAhead
	// shared keeps encoded pull pages that callers of the same scopes ask
	// for again (sharedpages.go).
	shared sharedPages
}

// NewService returns a record service over store.
func NewService(store Store, opt Options) *Service {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.PushInFlight <= 0 {
		opt.PushInFlight = DefaultPushInFlight
	}
	n := int64(max(opt.PushInFlight, sp.MaxBatchItems)) // a full batch always fits
	return &Service{store: store, now: opt.Now, log: opt.Logger, pushing: semaphore.NewWeighted(n), inFlight: n}
}
