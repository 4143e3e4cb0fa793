// Package fleet keeps track of the devices that sync: when each last
// pushed and pulled, which app version it runs, how far its clock is from
// the server's, and how many records it pushed. Supervisors and admins see
// it to find a tablet that stopped syncing or whose clock is wrong (its
// writes would win or lose last-writer-wins unfairly).
package fleet

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Stats is what the server saw of one device.
type Stats struct {
	LastPush      time.Time `json:"last_push,omitzero"`
	LastPull      time.Time `json:"last_pull,omitzero"`
	AppVersion    string    `json:"app_version,omitempty"`
	SkewMs        int64     `json:"skew_ms"` // device clock minus server clock, at its last request that said its time
	SkewKnown     bool      `json:"skew_known"`
	RecordsPushed int64     `json:"records_pushed"`
}

// Store persists the tracker's figures.
type Store interface {
	LoadFleet(ctx context.Context) (map[string]Stats, error)
	SaveFleet(ctx context.Context, m map[string]Stats) error
}

// Tracker holds the figures in memory and saves them now and then, so that
// a pull (a read) never waits for a disk write.
type Tracker struct {
	mu    sync.Mutex
	m     map[string]Stats
	dirty bool
	store Store
	log   *slog.Logger
}

// NewTracker loads the saved figures. It returns the store's error.
func NewTracker(ctx context.Context, st Store, log *slog.Logger) (*Tracker, error) {
	m, err := st.LoadFleet(ctx)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]Stats{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{m: m, store: st, log: log}, nil
}

// Request describes one device request.
type Request struct {
	Device     string
	Push       bool // a push; otherwise a pull
	Records    int  // items pushed
	Now        time.Time
	DeviceTime int64 // the device's clock in unix ms, 0 if not sent
	AppVersion string
}

// Seen records a device's request.
func (t *Tracker) Seen(r Request) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[r.Device]
	if r.Push {
		s.LastPush = r.Now.UTC()
		s.RecordsPushed += int64(r.Records)
	} else {
		s.LastPull = r.Now.UTC()
	}
	if r.AppVersion != "" {
		if len(r.AppVersion) > 64 {
			r.AppVersion = r.AppVersion[:64]
		}
		s.AppVersion = r.AppVersion
	}
	if r.DeviceTime > 0 {
		s.SkewMs = r.DeviceTime - r.Now.UnixMilli()
		s.SkewKnown = true
	}
	t.m[r.Device] = s
	t.dirty = true
}

// Get returns the figures of one device.
func (t *Tracker) Get(id string) Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

// Flush saves the figures if they changed. It returns the store's error.
func (t *Tracker) Flush(ctx context.Context) error {
	t.mu.Lock()
	if !t.dirty {
		t.mu.Unlock()
		return nil
	}
	cp := make(map[string]Stats, len(t.m))
	for k, v := range t.m {
		cp[k] = v
	}
	t.dirty = false
	t.mu.Unlock()
	if err := t.store.SaveFleet(ctx, cp); err != nil {
		t.mu.Lock()
		t.dirty = true
		t.mu.Unlock()
		return err
	}
	return nil
}

// Run saves the figures every interval until ctx ends, then once more.
func (t *Tracker) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := t.Flush(context.Background()); err != nil {
				t.log.Warn("saving fleet figures", slog.String("error", err.Error()))
			}
			return
		case <-tick.C:
			if err := t.Flush(ctx); err != nil {
				t.log.Warn("saving fleet figures", slog.String("error", err.Error()))
			}
		}
	}
}
