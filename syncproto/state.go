package syncproto

import "encoding/json"

// State is a record's full state on the wire (PROTOCOL.md §1): its identity,
// its vector clock and the surviving writes. A push item has the same shape
// but carries only some fields (§2).
type State struct {
	ID     string  `json:"id"`
	Form   string  `json:"form"`
	Scope  string  `json:"scope"`
	Clock  Clock   `json:"clock"`
	Writes []Write `json:"writes"`
}

// Write is one save by one actor: its dot (By, N), the writer's wall clock
// At in unix milliseconds, and the values of the fields it changed that
// survive. Ctx is the clock the deleting actor saw, on a write of
// _deleted = true only.
type Write struct {
	By     string                     `json:"by"`
	N      uint64                     `json:"n"`
	At     int64                      `json:"at"`
	Fields map[string]json.RawMessage `json:"fields"`
	Ctx    Clock                      `json:"ctx,omitempty"`
}

// Dot returns the write's dot.
func (w Write) Dot() Dot { return Dot{By: w.By, N: w.N} }

// SiblingView is how supervisors' views show one sibling of a field.
type SiblingView struct {
	V  json.RawMessage `json:"v"`
	By string          `json:"by"`
	N  uint64          `json:"n"`
	At int64           `json:"at"`
}
