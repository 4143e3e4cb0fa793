package syncproto

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// A strict one-pass reader of JSON text (RFC 8259), for the hot path of a
// push: it accepts exactly what encoding/json's Valid accepts (any byte
// from 0x20 inside strings, as Valid does), and measures how deep arrays
// and objects nest, in a single pass. Anything it is not sure of (nesting
// past scanMaxDepth) it declines, and the caller falls back on
// encoding/json, so it can only make things faster, never different;
// FuzzScanValue checks this against json.Valid and Depth.

// scanMaxDepth is the deepest nesting the scanner follows. It is past
// MaxValueDepth plus an item's own levels, so every value a push may hold
// is read here; deeper text goes to encoding/json.
const scanMaxDepth = MaxValueDepth + 16

// scanResult says what scanning stopped at.
type scanResult uint8

const (
	scanOK      scanResult = iota // one valid value
	scanInvalid                   // not valid JSON
	scanTooDeep                   // nested past scanMaxDepth: undecided
)

// jsonScanner reads JSON text from b, at position i.
type jsonScanner struct {
	b []byte
	i int
	// deepest is the deepest nesting seen since the scanner was made.
	deepest int
	// spaced is whether any white space was skipped since then.
	spaced bool
}

// scanValue reports whether v is one JSON value, with white space around
// it allowed, and how deep its arrays and objects nest.
func scanValue(v []byte) (depth int, res scanResult) {
	s := jsonScanner{b: v}
	s.ws()
	if res := s.value(0); res != scanOK {
		return 0, res
	}
	s.ws()
	if s.i != len(s.b) {
		return 0, scanInvalid
	}
	return s.deepest, scanOK
}

// ws skips white space.
func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
			s.spaced = true
		default:
			return
		}
	}
}

// value reads one value starting exactly at s.i, at nesting depth d.
func (s *jsonScanner) value(d int) scanResult {
	if s.i >= len(s.b) {
		return scanInvalid
	}
	switch c := s.b[s.i]; {
	case c == '"':
		if _, ok := s.str(); !ok {
			return scanInvalid
		}
		return scanOK
	case c == '{':
		return s.object(d + 1)
	case c == '[':
		return s.array(d + 1)
	case c == '-' || c >= '0' && c <= '9':
		if !s.number() {
			return scanInvalid
		}
		return scanOK
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return scanInvalid
}

func (s *jsonScanner) literal(lit string) scanResult {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return scanInvalid
	}
	s.i += len(lit)
	return scanOK
}

// enter notes one more level of nesting.
func (s *jsonScanner) enter(d int) scanResult {
	if d > scanMaxDepth {
		return scanTooDeep
	}
	s.deepest = max(s.deepest, d)
	return scanOK
}

// object reads an object at s.i ('{'), whose members are at depth d.
func (s *jsonScanner) object(d int) scanResult {
	if r := s.enter(d); r != scanOK {
		return r
	}
	return s.eachMember(func([]byte, bool) scanResult { return s.value(d) })
}

// array reads an array at s.i ('['), whose elements are at depth d.
func (s *jsonScanner) array(d int) scanResult {
	if r := s.enter(d); r != scanOK {
		return r
	}
	return s.eachElement(func() scanResult { return s.value(d) })
}

// eachMember reads an object at s.i, calling member with s.i at each
// value, the key's text (between its quotes) and whether the key is plain
// (see str); member reads the value. It stops at the first result that is
// not scanOK and returns it.
func (s *jsonScanner) eachMember(member func(key []byte, plain bool) scanResult) scanResult {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return scanInvalid
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return scanOK
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return scanInvalid
		}
		start := s.i + 1
		plain, ok := s.str()
		if !ok {
			return scanInvalid
		}
		key := s.b[start : s.i-1]
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return scanInvalid
		}
		s.i++
		s.ws()
		if r := member(key, plain); r != scanOK {
			return r
		}
		if r := s.next('}'); r != scanMore {
			return r
		}
	}
}

// eachElement reads an array at s.i, calling element with s.i at each
// one, as eachMember does.
func (s *jsonScanner) eachElement(element func() scanResult) scanResult {
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return scanInvalid
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return scanOK
	}
	for {
		if r := element(); r != scanOK {
			return r
		}
		if r := s.next(']'); r != scanMore {
			return r
		}
	}
}

// skipValid moves past the value at s.i, which must be valid JSON (read
// before by the scanner or encoding/json): strings are skipped with
// bytes.IndexByte, containers by counting their brackets, and white space
// outside strings sets spaced. It is false only if the text ends first,
// which valid JSON does not.
func (s *jsonScanner) skipValid() bool {
	b := s.b
	depth := 0
	for i := s.i; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			if i = StringEnd(b, i); i < 0 {
				return false
			}
			if depth == 0 {
				s.i = i + 1
				return true
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				s.i = i + 1
				return true
			}
		case ' ', '\t', '\n', '\r':
			s.spaced = true
		default:
			if depth == 0 { // a number, true, false or null
				for i < len(b) && !isDelimiter(b[i]) {
					i++
				}
				s.i = i
				return true
			}
		}
	}
	return false
}

// isDelimiter reports whether c ends a number or literal.
func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// StringEnd returns the index of the quote that ends the JSON string
// opened at b[open], or -1 if it does not end: it finds quotes with
// bytes.IndexByte and counts the backslashes before each. It does not
// check the string's escapes; for text known to be JSON.
func StringEnd(b []byte, open int) int {
	for i := open + 1; ; i++ {
		k := bytes.IndexByte(b[i:], '"')
		if k < 0 {
			return -1
		}
		i += k
		backslashes := 0
		for j := i - 1; j > open && b[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return i
		}
	}
}

// scanMore, from next, says a ',' came: another member or element follows.
const scanMore scanResult = 255

// next reads what follows a member or element: a ',' (scanMore), or the
// closing byte (scanOK).
func (s *jsonScanner) next(closing byte) scanResult {
	s.ws()
	if s.i >= len(s.b) {
		return scanInvalid
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		s.ws()
		return scanMore
	case closing:
		s.i++
		return scanOK
	}
	return scanInvalid
}

// strClass sorts the bytes of a string's text: strPlain bytes stand for
// themselves and are written back the same; strOther bytes are valid but
// not plain (non-ASCII, DEL, and the HTML characters); strSpecial bytes
// end the string, start an escape, or are not allowed (control bytes).
var strClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == '"' || c == '\\' || c < 0x20:
			t[c] = strSpecial
		case c > 0x7e || c == '<' || c == '>' || c == '&':
			t[c] = strOther
		}
	}
	return t
}()

const (
	strPlain uint8 = iota
	strOther
	strSpecial
)

// str reads a string at s.i ('"') and reports whether it is plain: only
// bytes from 0x20 to 0x7e, no escape, no '<', '>' or '&' (so its bytes are
// its value, and encoding/json writes it back the same). Runs of ordinary
// bytes, most of a form's text, are skipped eight at a time, and the skip
// stops on the first byte that needs a look.
func (s *jsonScanner) str() (plain, ok bool) {
	s.i++ // "
	plain = true
	b := s.b
	for i := s.i; i < len(b); i++ {
		// Skip to the first byte that is not plain (or, once the string
		// is known not to be plain, to the first special byte).
		for i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			var m uint64
			if plain {
				m = specialOrOtherBytes(w)
			} else {
				m = specialBytes(w)
			}
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		switch strClass[b[i]] {
		case strPlain: // only in the last seven bytes, read one at a time
			continue
		case strOther:
			plain = false
			continue
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return plain, true
		case c < 0x20:
			return false, false
		default: // a backslash
			plain = false
			if i = escapeEnd(b, i); i < 0 {
				return false, false
			} // i is the escape's last byte, which the loop steps past
		}
	}
	return false, false
}

// The bytes of a word, eight at a time (the "haszero" and "hasless" tests
// of Bit Twiddling Hacks). Each test below gives a word's high bits: none
// is set when no byte matches, and the lowest one set marks the first
// byte that matches (a byte above it may be marked wrongly, by a borrow).
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// specialBytes marks the bytes of w that are strSpecial: '"', '\\' or a
// control byte.
func specialBytes(w uint64) uint64 {
	return ((w-ones*0x20)&^w | zeroBytes(w^ones*'"') | zeroBytes(w^ones*'\\')) & highs
}

// hasSpecialByte reports whether any byte of w is strSpecial.
func hasSpecialByte(w uint64) bool { return specialBytes(w) != 0 }

// specialOrOtherBytes marks the bytes of w that are strSpecial or strOther:
// not plain.
func specialOrOtherBytes(w uint64) uint64 {
	// '<' (3c) and '>' (3e) are the bytes b with b|2 == 3e.
	return (w - ones*0x20 | w | zeroBytes(w^ones*'"') | zeroBytes(w^ones*'\\') | zeroBytes(w^ones*0x7f) |
		zeroBytes((w|ones*2)^ones*'>') | zeroBytes(w^ones*'&')) & highs
}

// zeroBytes has the high bit of a byte set where x has a zero byte (and
// maybe above it): none is set when x has none.
func zeroBytes(x uint64) uint64 { return (x - ones) &^ x }

// escapeEnd returns the index of the last byte of the escape that starts
// with the backslash at b[i], or -1 if it is not a valid escape.
func escapeEnd(b []byte, i int) int {
	i++
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i
	case 'u':
		if len(b)-i < 5 || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
			return -1
		}
		return i + 4
	}
	return -1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number reads a number at s.i: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

// digits reads [0-9]* and returns how many.
func (s *jsonScanner) digits() int {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}
