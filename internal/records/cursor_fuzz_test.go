package records

// Run with
//
//	go test -run='^$' -fuzz=FuzzParseCursor -fuzztime=15s ./internal/records

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzParseCursor: ParseCursor never panics, and a cursor that parses is
// the one String gives for what it parsed to. A cursor identifies the exact
// change it points at (PROTOCOL.md §3), so one change has one spelling: a
// string the server never issued is malformed (400 bad_cursor), never a
// second name for a real cursor.
func FuzzParseCursor(f *testing.F) {
	valid := Cursor{Seq: 4711, Nonce: 0x0123456789abcdef}
	copy(valid.DBID[:], "0123456789abcdef")
	max := Cursor{Seq: ^uint64(0), Nonce: ^uint64(0)}
	for i := range max.DBID {
		max.DBID[i] = 0xff
	}
	for _, s := range []string{
		"", valid.String(), max.String(), (Cursor{}).String(),
		valid.String() + "=", valid.String()[:43], valid.String() + "A",
		// Go's base64 decoder skips CR and LF, so these parse as valid's
		// change under another spelling (GET /v1/sync/pull?since= with a
		// %0A inside answers 200, not 400 bad_cursor): they fail until
		// ParseCursor refuses them.
		valid.String()[:20] + "\n" + valid.String()[20:],
		valid.String()[:20] + "\r" + valid.String()[20:],
		strings.ToUpper(valid.String()),
		base64.StdEncoding.EncodeToString([]byte(valid.String())),
		base64.RawURLEncoding.EncodeToString(append([]byte{2}, make([]byte, 32)...)),
		base64.RawURLEncoding.EncodeToString(make([]byte, 34)),
		"!!!", "AAAA", "AQ", strings.Repeat("A", 44), strings.Repeat("_", 44), strings.Repeat("-", 44),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := ParseCursor(s)
		if !ok {
			if c != (Cursor{}) {
				t.Fatalf("ParseCursor(%q) = {seq %d, nonce %#x}, false: a refused cursor must come back zero", s, c.Seq, c.Nonce)
			}
			return
		}
		if got := c.String(); got != s {
			t.Fatalf("ParseCursor(%q) = {seq %d, nonce %#x}, whose String() is %q: one change, two spellings", s, c.Seq, c.Nonce, got)
		}
		back, ok := ParseCursor(c.String())
		if !ok || back != c {
			t.Fatalf("ParseCursor(String()) of {seq %d, nonce %#x} = {seq %d, nonce %#x}, %v", c.Seq, c.Nonce, back.Seq, back.Nonce, ok)
		}
	})
}
