package syncproto

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// EqualValues reports whether two JSON values are equal as parsed JSON: key
// order and white space do not matter, numbers compare by value.
func EqualValues(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ca, errA := Canonical(a)
	cb, errB := Canonical(b)
	if errA != nil || errB != nil {
		return false
	}
	return bytes.Equal(ca, cb)
}

// Canonical returns a canonical encoding of a JSON value: object keys
// sorted, no white space, numbers in one form per value. Two values are
// equal as parsed JSON exactly when their canonical encodings are equal.
// It returns an error if v is not valid JSON. The result may be v itself
// (or share its memory): the caller must not modify it.
func Canonical(v []byte) ([]byte, error) {
	if c, ok := canonicalScalar(v, false); ok {
		return c, nil
	}
	return canonicalComposite(v)
}

// CanonicalUTF8 is Canonical for a value known to be valid UTF-8, as every
// value of a push body DecodePush accepted: it does not check the UTF-8
// of its strings again. For text that is not valid UTF-8 its result is
// unspecified.
func CanonicalUTF8(v []byte) ([]byte, error) {
	if c, ok := canonicalScalar(v, true); ok {
		return c, nil
	}
	return canonicalComposite(v)
}

// canonicalComposite is Canonical past its shortcut for scalars.
func canonicalComposite(v []byte) ([]byte, error) {
	if c, ok := canonicalScan(v); ok {
		return c, nil
	}
	return canonicalDecode(v)
}

// canonicalDecode is Canonical through encoding/json, for any value.
func canonicalDecode(v []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("syncproto: more than one JSON value")
	}
	var b bytes.Buffer
	writeCanonical(&b, x)
	return b.Bytes(), nil
}

// canonicalScalar is Canonical's fast path for the values most fields hold:
// a string without escapes (nor U+2028, U+2029), a number, true, false or
// null, without surrounding white space. ok is false for anything else.
// validUTF8 says v is known to be valid UTF-8, and is not checked again.
func canonicalScalar(v []byte, validUTF8 bool) ([]byte, bool) {
	if len(v) == 0 {
		return nil, false
	}
	switch c := v[0]; {
	case c == '"':
		if len(v) < 2 || v[len(v)-1] != '"' {
			return nil, false
		}
		ascii, ok := unescapedText(v[1 : len(v)-1])
		if !ok {
			return nil, false
		}
		// encoding/json always escapes U+2028 and U+2029: leave those to
		// the slow path, so every spelling gets one canonical form.
		if !ascii && (!validUTF8 && !utf8.Valid(v) || hasLineSeparator(v)) {
			return nil, false
		}
		return v, true
	case c == '-' || c >= '0' && c <= '9':
		s := jsonScanner{b: v}
		if !s.number() || s.i != len(v) {
			return nil, false
		}
		if isOwnCanonicalInteger(v) {
			return v, true
		}
		return appendCanonicalNumber(nil, v), true
	case string(v) == "true" || string(v) == "false" || string(v) == "null":
		return v, true
	}
	return nil, false
}

func writeCanonical(b *bytes.Buffer, x any) {
	switch t := x.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeCanonical(b, t[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case json.Number:
		b.WriteString(canonicalNumber(string(t)))
	case string:
		writeString(b, t)
	case bool:
		b.WriteString(strconv.FormatBool(t))
	default:
		b.WriteString("null")
	}
}

func writeString(b *bytes.Buffer, s string) {
	e := json.NewEncoder(b)
	e.SetEscapeHTML(false)
	_ = e.Encode(s) // a string always encodes
	b.Truncate(b.Len() - 1)
}

// unescapedText reports whether the text of a JSON string (between its
// quotes) has no escape, no quote and no control byte, so that it is its
// own canonical spelling if it is valid UTF-8; and whether it is all ASCII
// (valid, then). It reads eight bytes at a time.
func unescapedText(t []byte) (ascii, ok bool) {
	var seen uint64 // every byte read, or-ed: its high bits say non-ASCII
	i := 0
	for ; i+8 <= len(t); i += 8 {
		w := binary.LittleEndian.Uint64(t[i:])
		if hasSpecialByte(w) {
			return false, false
		}
		seen |= w
	}
	for ; i < len(t); i++ {
		c := t[i]
		if strClass[c] == strSpecial {
			return false, false
		}
		seen |= uint64(c)
	}
	return seen&highs == 0, true
}

// hasLineSeparator reports whether UTF-8 text holds U+2028 or U+2029
// (E2 80 A8, E2 80 A9).
func hasLineSeparator(v []byte) bool {
	for {
		i := bytes.IndexByte(v, 0xE2)
		if i < 0 || len(v)-i < 3 {
			return false
		}
		if v[i+1] == 0x80 && (v[i+2] == 0xA8 || v[i+2] == 0xA9) {
			return true
		}
		v = v[i+1:]
	}
}

// appendCanonicalNumber appends canonicalNumber(lit) to b, for lit a
// valid JSON number. A plain integer that does not end in 0 (the numbers
// a form mostly holds: ages, sizes, amounts) is its own canonical form
// and is appended as it is.
func appendCanonicalNumber(b, lit []byte) []byte {
	if isOwnCanonicalInteger(lit) {
		return append(b, lit...)
	}
	s := lit
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	mant, e := s, int64(0)
	if i := bytes.IndexAny(s, "eE"); i >= 0 {
		x, err := strconv.ParseInt(string(s[i+1:]), 10, 64)
		if err != nil || x > 1<<60 || x < -(1<<60) {
			return append(b, canonicalNumber(string(lit))...)
		}
		mant, e = s[:i], x
	}
	intPart, frac := mant, mant[len(mant):]
	if i := bytes.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	e -= int64(len(frac))
	// The digits are intPart then frac, without leading or trailing zeros;
	// each zero dropped at the end adds one to the exponent.
	intPart = bytes.TrimLeft(intPart, "0")
	if len(intPart) == 0 {
		frac = bytes.TrimLeft(frac, "0")
	}
	if len(intPart)+len(frac) == 0 {
		return append(b, '0')
	}
	n := len(frac)
	if frac = bytes.TrimRight(frac, "0"); len(frac) == 0 {
		n += len(intPart)
		intPart = bytes.TrimRight(intPart, "0")
		n -= len(intPart)
	} else {
		n -= len(frac)
	}
	e += int64(n)
	if neg {
		b = append(b, '-')
	}
	b = append(append(b, intPart...), frac...)
	if e != 0 {
		b = strconv.AppendInt(append(b, 'e'), e, 10)
	}
	return b
}

// isOwnCanonicalInteger reports whether lit is "0" or -?[1-9][0-9]* not
// ending in 0: an integer canonicalNumber spells as it is.
func isOwnCanonicalInteger(lit []byte) bool {
	if string(lit) == "0" {
		return true
	}
	d := lit
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || d[0] < '1' || d[0] > '9' || d[len(d)-1] == '0' {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// canonicalNumber gives one spelling per numeric value, exactly: the
// decimal digits without leading or trailing zeros and a power of ten, so
// 1, 1.0, 1e0 and 10e-1 are the same number, and 10000000000000000 equals
// 1e16 while 9007199254740993 differs from 9007199254740992. s must be a
// JSON number literal; one whose exponent does not fit is kept as written.
func canonicalNumber(s string) string {
	lit := s
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, exp := s, "0"
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp = s[:i], s[i+1:]
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || e > 1<<60 || e < -(1<<60) {
		return strings.ToLower(lit)
	}
	e -= int64(len(frac))
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return "0"
	}
	trimmed := strings.TrimRight(digits, "0")
	e += int64(len(digits) - len(trimmed))
	out := trimmed
	if e != 0 {
		out += "e" + strconv.FormatInt(e, 10)
	}
	if neg {
		out = "-" + out
	}
	return out
}
