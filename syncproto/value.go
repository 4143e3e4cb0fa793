package syncproto

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
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
// It returns an error if v is not valid JSON.
func Canonical(v []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	writeCanonical(&b, x)
	return b.Bytes(), nil
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

// maxExact is the largest integer below which every integer is a float64.
var maxExact = new(big.Int).Lsh(big.NewInt(1), 53)

// canonicalNumber gives one spelling per numeric value: 1, 1.0 and 1e0 are
// the same number. Integers beyond float64's exact range keep their digits.
func canonicalNumber(s string) string {
	if !strings.ContainsAny(s, ".eE") {
		if i, ok := new(big.Int).SetString(s, 10); ok && new(big.Int).Abs(i).Cmp(maxExact) > 0 {
			return i.String()
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return strings.ToLower(s)
	}
	if f == 0 {
		return "0"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
