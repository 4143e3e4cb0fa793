// Package client is fieldsync's tablet SDK: an offline device store in its
// own bbolt file, local saves and deletes that follow the protocol's write
// rules, and Sync, which pushes the device's changes in retry-safe batches
// and pulls the server's (PROTOCOL.md §1–§3).
//
// A Client is safe for concurrent use: saves may happen while a Sync runs,
// and a save that touches a field after its batch was built keeps it dirty
// for the next Sync.
package client

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// Log attribute keys, one spelling each. Field values are never logged.
const (
	keyRecord  = "record"
	keyBatch   = "batch"
	keyItems   = "items"
	keyCode    = "code"
	keyError   = "error"
	keyStatus  = "status"
	keyAttempt = "attempt"
	keyWait    = "wait"
	keyRoute   = "route"
	keyMessage = "message"
)

// Defaults of Options.
const (
	DefaultBatchSize   = 500
	DefaultMaxRetries  = 5
	DefaultBackoffBase = 500 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultPullLimit   = sp.DefaultPull
)

// Encodings of a push body.
const (
	EncodingNone = ""
	EncodingGzip = "gzip"
	EncodingZstd = "zstd"
)

// Options configure a Client.
type Options struct {
	// ServerURL is the server's base URL, e.g. https://sync.example.org.
	// It may be empty for a device that only works offline (Sync then fails).
	ServerURL string
	// Token is the device's bearer token.
	Token string
	// Device is the device's id: a lowercase UUID, its actor in clocks.
	Device string
	// AppVersion is sent as X-App-Version.
	AppVersion string
	// HTTPClient sends the requests; nil means a client with a 2-minute timeout.
	HTTPClient *http.Client
	// Now is the device's wall clock; nil means time.Now.
	Now func() time.Time
	// Encoding compresses push bodies: "zstd", "gzip" or "" (none).
	Encoding string
	// BatchSize is the most items a push carries; 0 means 500 (at most 2,000).
	BatchSize int
	// PullLimit is the page size of pulls; 0 means 500 (at most 1,000).
	PullLimit int
	// MaxRetries is how many times a request is retried after a 429, a 5xx
	// or a network error before Sync gives up; 0 means 5, negative none.
	MaxRetries int
	// BackoffBase is the first retry's backoff ceiling, doubled on each
	// retry (full jitter); 0 means 500 ms.
	BackoffBase time.Duration
	// MaxBackoff caps the backoff ceiling; 0 means 30 s. A Retry-After from
	// the server is honoured as given.
	MaxBackoff time.Duration
	// Logger receives operational logs (never field values); nil discards.
	Logger *slog.Logger
}

// Client is a device's SDK: its store and its connection to the server.
type Client struct {
	opt   Options
	st    *deviceStore
	http  *http.Client
	log   *slog.Logger
	now   func() time.Time
	sleep func(ctxDone <-chan struct{}, d time.Duration) bool // for tests

	syncMu sync.Mutex // one Sync at a time
}

// Errors of Open.
var (
	// ErrBadOptions wraps every complaint about Options.
	ErrBadOptions = errors.New("client: bad options")
	// ErrOtherDevice is returned when the device file was made for another device.
	ErrOtherDevice = errStoreDevice
	// ErrInUse is returned when another process holds the device file
	// (a sync still running) for more than a second.
	ErrInUse = errors.New("client: the device file is in use by another process")
)

// Open opens (creating if needed) the device file at path and returns a
// Client. It returns an error wrapping ErrBadOptions for invalid options,
// ErrOtherDevice when the file belongs to another device, and the file's
// errors (a file held open by another process times out after a second).
func Open(path string, opt Options) (*Client, error) {
	if !sp.IsUUID(opt.Device) {
		return nil, fmt.Errorf("%w: Device %q is not a lowercase UUID", ErrBadOptions, opt.Device)
	}
	if opt.ServerURL != "" {
		u, err := url.Parse(opt.ServerURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: ServerURL %q is not an http(s) URL", ErrBadOptions, opt.ServerURL)
		}
		opt.ServerURL = strings.TrimRight(opt.ServerURL, "/")
	}
	switch opt.Encoding {
	case EncodingNone, EncodingGzip, EncodingZstd:
	default:
		return nil, fmt.Errorf("%w: Encoding %q: use \"zstd\", \"gzip\" or \"\"", ErrBadOptions, opt.Encoding)
	}
	switch {
	case opt.BatchSize == 0:
		opt.BatchSize = DefaultBatchSize
	case opt.BatchSize < 0 || opt.BatchSize > sp.MaxBatchItems:
		return nil, fmt.Errorf("%w: BatchSize %d: 1 to %d", ErrBadOptions, opt.BatchSize, sp.MaxBatchItems)
	}
	switch {
	case opt.PullLimit == 0:
		opt.PullLimit = DefaultPullLimit
	case opt.PullLimit < 0 || opt.PullLimit > sp.MaxPull:
		return nil, fmt.Errorf("%w: PullLimit %d: 1 to %d", ErrBadOptions, opt.PullLimit, sp.MaxPull)
	}
	switch {
	case opt.MaxRetries == 0:
		opt.MaxRetries = DefaultMaxRetries
	case opt.MaxRetries < 0:
		opt.MaxRetries = 0
	}
	if opt.BackoffBase <= 0 {
		opt.BackoffBase = DefaultBackoffBase
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = DefaultMaxBackoff
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	hc := opt.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	st, err := openStore(path, opt.Device)
	if err != nil {
		return nil, err
	}
	return &Client{opt: opt, st: st, http: hc, log: opt.Logger, now: opt.Now, sleep: sleepCtx}, nil
}

// Close closes the device file. A Sync in progress finishes first.
func (c *Client) Close() error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	return c.st.close()
}

// Device returns the device's id.
func (c *Client) Device() string { return c.opt.Device }

// NewID returns a new record id: a time-ordered UUIDv7.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// sleepCtx waits d or until done closes; it reports whether d passed.
func sleepCtx(done <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
