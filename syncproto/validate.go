package syncproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Validate checks a state or push item on its own (PROTOCOL.md §1, §2, §7):
// ids, names, the clock, every write's dot covered by the clock, no dot
// twice, no write without fields, reserved fields, and the limits. It
// returns an *Error with CodeInvalidRecord, or CodeTooLarge for a limit,
// whose message names the field and the reason (never its value).
func Validate(s State) error { return validate(s, false) }

// validate is Validate; valuesRead says every value is known to be one
// JSON value nested no deeper than MaxValueDepth (scanItem read them), so
// they are not read again.
func validate(s State, valuesRead bool) error {
	if !IsUUID(s.ID) {
		return Errorf(CodeInvalidRecord, "id %s: not a lowercase UUID", quoteName(s.ID))
	}
	if !IsSlug(s.Form) {
		return Errorf(CodeInvalidRecord, "form %s: must match [a-z0-9_-]{1,64}", quoteName(s.Form))
	}
	if !IsSlug(s.Scope) {
		return Errorf(CodeInvalidRecord, "scope %s: must match [a-z0-9_-]{1,64}", quoteName(s.Scope))
	}
	if err := validateClock("clock", s.Clock); err != nil {
		return err
	}
	// Distinct dots and field names are counted with maps only when there
	// is more than one write.
	var seen map[Dot]bool
	var fields map[string]bool
	if len(s.Writes) > 1 {
		seen = make(map[Dot]bool, len(s.Writes))
		fields = map[string]bool{}
	}
	for i, w := range s.Writes {
		where := fmt.Sprintf("writes[%d]", i)
		if !IsUUID(w.By) {
			return Errorf(CodeInvalidRecord, "%s.by %s: not a lowercase UUID", where, quoteName(w.By))
		}
		if w.N < 1 {
			return Errorf(CodeInvalidRecord, "%s.n: must be at least 1", where)
		}
		if !s.Clock.Covers(w.Dot()) {
			return Errorf(CodeInvalidRecord, "%s: dot (%s, %d) is not covered by the clock", where, w.By, w.N)
		}
		if seen[w.Dot()] {
			return Errorf(CodeInvalidRecord, "%s: dot (%s, %d) appears twice", where, w.By, w.N)
		}
		if seen != nil {
			seen[w.Dot()] = true
		}
		if len(w.Fields) == 0 {
			return Errorf(CodeInvalidRecord, "%s: a write with no field", where)
		}
		for name, v := range w.Fields {
			if err := validateField(where, name, v, w, valuesRead); err != nil {
				return firstFieldError(where, w, valuesRead)
			}
			if fields != nil {
				fields[name] = true
			}
		}
	}
	n := len(fields)
	if fields == nil && len(s.Writes) == 1 {
		n = len(s.Writes[0].Fields)
	}
	if n > MaxFields {
		return Errorf(CodeTooLarge, "%d fields: a record holds at most %d", n, MaxFields)
	}
	return nil
}

// firstFieldError returns the error of the first invalid field of w in
// name order, so that a write with several gets the same error each time
// (maps have no order).
func firstFieldError(where string, w Write, valuesRead bool) error {
	names := make([]string, 0, len(w.Fields))
	for name := range w.Fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := validateField(where, name, w.Fields[name], w, valuesRead); err != nil {
			return err
		}
	}
	return nil
}

func validateField(where, name string, v json.RawMessage, w Write, valueRead bool) error {
	switch {
	case name == FieldDeleted:
		t := string(bytes.TrimSpace(v))
		if t != "true" && t != "false" {
			return Errorf(CodeInvalidRecord, "%s field \"_deleted\": must be true or false", where)
		}
		// A delete without ctx had seen nothing: its ctx is the empty clock,
		// which the wire form omits (as the shared vectors do).
		if t == "true" {
			if err := validateClock(where+".ctx", w.Ctx); err != nil {
				return err
			}
		}
	case name == FieldReview:
		if t := bytes.TrimSpace(v); len(t) == 0 || t[0] != '{' {
			return Errorf(CodeInvalidRecord, "%s field \"_review\": must be an object", where)
		}
	case IsReserved(name):
		return Errorf(CodeInvalidRecord, "%s field %s: reserved name", where, quoteName(name))
	case !IsFieldName(name):
		return Errorf(CodeInvalidRecord, "%s field %s: bad name (must match [A-Za-z][A-Za-z0-9_.]{0,127})", where, quoteName(name))
	}
	if len(v) > MaxValueBytes {
		return Errorf(CodeTooLarge, "%s field %s: value of %d bytes, at most %d", where, quoteName(name), len(v), MaxValueBytes)
	}
	if valueRead {
		return nil
	}
	d, res := scanValue(v)
	if res == scanTooDeep {
		if !json.Valid(v) {
			res = scanInvalid
		}
		d = depth(v)
	}
	if len(v) == 0 || res == scanInvalid {
		return Errorf(CodeInvalidRecord, "%s field %s: not a JSON value", where, quoteName(name))
	}
	if d > MaxValueDepth {
		return Errorf(CodeInvalidRecord, "%s field %s: nested deeper than %d", where, quoteName(name), MaxValueDepth)
	}
	return nil
}

func validateClock(where string, c Clock) error {
	if len(c) > MaxActors {
		return Errorf(CodeTooLarge, "%s: %d actors, at most %d", where, len(c), MaxActors)
	}
	for a, n := range c {
		if IsUUID(a) && n >= 1 {
			continue
		}
		// Report the first bad entry in actor order, the same each time.
		a = slices.MinFunc(badActors(c), strings.Compare)
		if !IsUUID(a) {
			return Errorf(CodeInvalidRecord, "%s: actor %s is not a lowercase UUID", where, quoteName(a))
		}
		return Errorf(CodeInvalidRecord, "%s: count of %s must be at least 1", where, a)
	}
	return nil
}

// badActors returns the actors of c that are not UUIDs or count below 1.
func badActors(c Clock) []string {
	var out []string
	for a, n := range c {
		if !IsUUID(a) || n < 1 {
			out = append(out, a)
		}
	}
	return out
}

// Depth returns the deepest nesting of arrays and objects in a JSON value.
func Depth(v []byte) int { return depth(v) }

func depth(v []byte) int {
	d, _ := scanJSON(v)
	return d
}

// scanJSON walks a JSON text once, minding strings, and returns its deepest
// nesting of arrays and objects and whether it has white space outside its
// strings (if not, it is already compact).
func scanJSON(v []byte) (maxDepth int, compact bool) {
	d := 0
	compact = true
	inString, escaped := false, false
	for _, c := range v {
		switch {
		case inString:
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			d++
			maxDepth = max(maxDepth, d)
		case c == ']' || c == '}':
			d--
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			compact = false
		}
	}
	return maxDepth, compact
}

// quoteName quotes an identifier for an error message, cut short so a
// message stays small. Names and ids are not personal data; values are and
// never appear in messages.
func quoteName(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strconv.Quote(s)
}
