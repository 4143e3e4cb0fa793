package syncproto

import (
	"encoding/json"
	"math"
	"strconv"
)

// Push items and push bodies of the usual shape are read here in one pass,
// without reflection. The readers decline (ok false) anything they are not
// sure to read exactly as encoding/json does: an unknown, repeated or
// escaped key, a null, a number that is not a plain integer, a string that
// is not plain ASCII, nesting past scanMaxDepth. The caller then takes the
// encoding/json path, which gives the same result and the exact error.
// FuzzItemScan and FuzzPushScan hold the two paths to the same answers.

// scanItem reads a push item of the usual shape. Field values are slices
// of raw, not copies. valuesRead says that no value nests deeper than
// MaxValueDepth: with ok, every value is then known to be valid.
func scanItem(raw []byte) (st State, valuesRead, ok bool) {
	s := jsonScanner{b: raw}
	s.ws()
	ok = s.keysOnce(itemKeys, func(k int) (ok bool) {
		switch k {
		case 0:
			st.ID, ok = s.plainString()
		case 1:
			st.Form, ok = s.plainString()
		case 2:
			st.Scope, ok = s.plainString()
		case 3:
			st.Clock, ok = s.clock()
		case 4:
			st.Writes, ok = s.writes()
		}
		return ok
	})
	if !ok {
		return State{}, false, false
	}
	s.ws()
	if s.i != len(s.b) {
		return State{}, false, false
	}
	return st, s.deepest <= MaxValueDepth, true
}

// The keys of an item, a write and a push body, in the order their
// readers number them.
var (
	itemKeys  = []string{"id", "form", "scope", "clock", "writes"}
	writeKeys = []string{"by", "n", "at", "fields", "ctx"}
	pushKeys  = []string{"device", "batch", "records"}
)

// keysOnce reads an object at s.i whose keys are among keys, each at most
// once, calling read with the key's index and s.i at its value. It
// reports false for any other key, a repeated one, or a value read
// declines.
func (s *jsonScanner) keysOnce(keys []string, read func(k int) bool) bool {
	var seen uint64
	return s.members(func(key []byte) bool {
		for k, name := range keys {
			if string(key) == name {
				if seen&(1<<k) != 0 {
					return false
				}
				seen |= 1 << k
				return read(k)
			}
		}
		return false
	})
}

// members reads an object at s.i whose keys are all plain (see str),
// calling member for each key with s.i at its value; member reads the
// value and reports whether it could. It reports false for anything else.
func (s *jsonScanner) members(member func(key []byte) bool) bool {
	return s.eachMember(func(key []byte, plain bool) scanResult {
		if !plain || !member(key) {
			return scanInvalid
		}
		return scanOK
	}) == scanOK
}

// elements reads an array at s.i, calling element with s.i at each one.
func (s *jsonScanner) elements(element func() bool) bool {
	return s.eachElement(func() scanResult {
		if !element() {
			return scanInvalid
		}
		return scanOK
	}) == scanOK
}

// plainBytes reads a plain string at s.i (see str) and returns its bytes.
func (s *jsonScanner) plainBytes() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	plain, ok := s.str()
	if !ok || !plain {
		return nil, false
	}
	return s.b[start : s.i-1], true
}

func (s *jsonScanner) plainString() (string, bool) {
	b, ok := s.plainBytes()
	return string(b), ok
}

// uint reads a JSON integer of plain digits that fits in 63 bits.
func (s *jsonScanner) uint() (uint64, bool) {
	start := s.i
	n := s.digits()
	if n == 0 || (n > 1 && s.b[start] == '0') || s.numberGoesOn() {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.b[start:s.i]), 10, 64)
	return v, err == nil && v <= math.MaxInt64
}

// numberGoesOn reports whether the number read goes on at s.i (a
// fraction or an exponent), which the plain-integer readers decline.
func (s *jsonScanner) numberGoesOn() bool {
	return s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E')
}

// int reads a JSON integer, perhaps negative, that fits in 63 bits.
func (s *jsonScanner) int() (int64, bool) {
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	u, ok := s.uint()
	if !ok {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

// clock reads a clock object.
func (s *jsonScanner) clock() (Clock, bool) {
	c := Clock{}
	ok := s.members(func(key []byte) bool {
		n, ok := s.uint()
		if !ok {
			return false
		}
		if _, dup := c[string(key)]; dup {
			return false
		}
		c[string(key)] = n
		return true
	})
	return c, ok
}

// writes reads the list of writes.
func (s *jsonScanner) writes() ([]Write, bool) {
	out := []Write{}
	ok := s.elements(func() bool {
		w, ok := s.write()
		out = append(out, w)
		return ok
	})
	return out, ok
}

// write reads one write.
func (s *jsonScanner) write() (w Write, ok bool) {
	ok = s.keysOnce(writeKeys, func(k int) (ok bool) {
		switch k {
		case 0:
			w.By, ok = s.plainString()
		case 1:
			w.N, ok = s.uint()
		case 2:
			w.At, ok = s.int()
		case 3:
			w.Fields, ok = s.fields()
		case 4:
			w.Ctx, ok = s.clock()
		}
		return ok
	})
	return w, ok
}

// fields reads a write's fields: each value is the slice of its text.
func (s *jsonScanner) fields() (map[string]json.RawMessage, bool) {
	f := make(map[string]json.RawMessage, 16)
	ok := s.members(func(key []byte) bool {
		start := s.i
		if s.value(0) != scanOK {
			return false
		}
		if _, dup := f[string(key)]; dup {
			return false
		}
		f[string(key)] = json.RawMessage(s.b[start:s.i:s.i])
		return true
	})
	return f, ok
}

// scanPush reads a push body of the usual shape: {"device", "batch",
// "records": [...]}, each item a slice of body.
func scanPush(body []byte) (req PushRequest, ok bool) {
	s := jsonScanner{b: body}
	s.ws()
	ok = s.keysOnce(pushKeys, func(k int) (ok bool) {
		switch k {
		case 0:
			req.Device, ok = s.plainString()
		case 1:
			req.Batch, ok = s.plainString()
		case 2:
			req.Records = []json.RawMessage{}
			ok = s.elements(func() bool {
				start := s.i
				if s.value(0) != scanOK {
					return false
				}
				req.Records = append(req.Records, json.RawMessage(body[start:s.i:s.i]))
				return true
			})
		}
		return ok
	})
	if !ok {
		return PushRequest{}, false
	}
	s.ws()
	return req, s.i == len(s.b)
}
