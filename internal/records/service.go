package records

import (
	"log/slog"
	"time"
)

// Options configure a Service.
type Options struct {
	// Now is the server clock; nil means time.Now.
	Now func() time.Time
	// Logger receives operational logs; never field values.
	Logger *slog.Logger
}

// Service is the record service.
type Service struct {
	store Store
	now   func() time.Time
	log   *slog.Logger
}

// NewService returns a record service over store.
func NewService(store Store, opt Options) *Service {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, now: opt.Now, log: opt.Logger}
}
