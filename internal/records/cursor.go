package records

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
)

// cursorLen is the length of a cursor's text: 33 bytes in base64url.
const cursorLen = 44

// cursorVersion is the first byte of every cursor, so the format can change.
const cursorVersion = 1

// Cursor points at one exact change of one database: its id, the change's
// seq and the nonce of the transaction that made it. A database restored
// from a backup reaches the same seq again with other transactions, whose
// nonces differ, so an old cursor is recognised as foreign (PROTOCOL.md §3).
type Cursor struct {
	DBID  [16]byte
	Seq   uint64
	Nonce uint64
}

// String encodes the cursor for the wire (opaque to clients).
func (c Cursor) String() string {
	b := make([]byte, 33)
	b[0] = cursorVersion
	copy(b[1:17], c.DBID[:])
	binary.BigEndian.PutUint64(b[17:25], c.Seq)
	binary.BigEndian.PutUint64(b[25:33], c.Nonce)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor decodes a wire cursor; ok is false for a malformed one.
func ParseCursor(s string) (c Cursor, ok bool) {
	// The decoder skips CR and LF: a cursor is exactly 44 characters of the
	// base64url alphabet, so each cursor has one spelling.
	if len(s) != cursorLen || strings.ContainsAny(s, "\r\n") {
		return c, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 33 || b[0] != cursorVersion {
		return c, false
	}
	copy(c.DBID[:], b[1:17])
	c.Seq = binary.BigEndian.Uint64(b[17:25])
	c.Nonce = binary.BigEndian.Uint64(b[25:33])
	return c, true
}

// cursorAt returns the cursor of change seq in tx's database.
func cursorAt(tx ReadTx, seq uint64) Cursor {
	c := Cursor{DBID: tx.Position().DBID, Seq: seq}
	if seq > 0 {
		c.Nonce, _ = tx.TxNonce(seq)
	}
	return c
}

// checkCursor returns an *sp.Error with CodeBadCursor for a malformed cursor
// and CodeResyncRequired for one that does not point at a change of this
// database's history. An empty cursor means the start.
func checkCursor(tx ReadTx, s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	c, ok := ParseCursor(s)
	if !ok {
		return 0, errBadCursor
	}
	pos := tx.Position()
	if c.DBID != pos.DBID || c.Seq > pos.LastSeq {
		return 0, errResync
	}
	if c.Seq == 0 {
		if c.Nonce != 0 {
			return 0, errResync
		}
		return 0, nil
	}
	if n, ok := tx.TxNonce(c.Seq); !ok || n != c.Nonce {
		return 0, errResync
	}
	return c.Seq, nil
}
