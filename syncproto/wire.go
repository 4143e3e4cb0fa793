package syncproto

import (
	"encoding/json"
	"time"
)

// PushRequest is the body of POST /v1/sync/push. Records stay raw until each
// is decoded on its own, so that one malformed item is rejected (and kept in
// the quarantine as sent) without failing the batch.
type PushRequest struct {
	Device  string            `json:"device"`
	Batch   string            `json:"batch"`
	Records []json.RawMessage `json:"records"`
}

// Push result statuses.
const (
	StatusApplied   = "applied"
	StatusUnchanged = "unchanged"
	StatusConflict  = "conflict"
	StatusRejected  = "rejected"
)

// PushResult is the answer for one item of a push.
type PushResult struct {
	ID        string   `json:"id"`
	Status    string   `json:"status"`
	Seq       uint64   `json:"seq,omitempty"`
	Clock     Clock    `json:"clock,omitempty"`
	Conflicts []string `json:"conflicts,omitempty"`
	Error     *Error   `json:"error,omitempty"`
}

// PushResponse is the 200 answer of a push.
type PushResponse struct {
	Batch   string       `json:"batch"`
	Results []PushResult `json:"results"`
}

// PulledRecord is a record's full state as a pull returns it, with its seq.
type PulledRecord struct {
	State
	Seq uint64 `json:"seq"`
}

// PullResponse is the answer of GET /v1/sync/pull.
type PullResponse struct {
	Records []PulledRecord `json:"records"`
	Cursor  string         `json:"cursor"`
	More    bool           `json:"more"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Headers a client sends so the server can see its fleet (extensions).
const (
	// HeaderDeviceTime carries the device's wall clock in unix
	// milliseconds when it sent the request: the server estimates skew.
	HeaderDeviceTime = "X-Device-Time"
	// HeaderAppVersion carries the client app's version.
	HeaderAppVersion = "X-App-Version"
)

// TimeFormat is how server times go on the wire (received_at, detected_at,
// updated_at): RFC 3339 UTC with milliseconds (PROTOCOL.md §7).
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Timestamp formats a server time for the wire.
func Timestamp(t time.Time) string { return t.UTC().Format(TimeFormat) }
