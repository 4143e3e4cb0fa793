package devicecli

import (
	"bytes"
	"encoding/json"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// writeJSON prints v as indented JSON, with <, > and & as they are.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// display is a value as the text output shows it: compact JSON, strings
// in quotes, non-ASCII as it is, object keys sorted.
func display(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return string(raw)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return string(raw)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// msTime formats a write's at (unix ms) as RFC 3339 UTC with milliseconds.
func msTime(ms int64) string {
	return sp.Timestamp(time.UnixMilli(ms))
}

// flagsOf are a record's flags in the list: conflict, deleted, dirty,
// review:STATE.
func flagsOf(s client.Summary) []string {
	out := []string{}
	if len(s.Conflicts) > 0 {
		out = append(out, "conflict")
	}
	if s.Deleted {
		out = append(out, "deleted")
	}
	if len(s.Dirty) > 0 {
		out = append(out, "dirty")
	}
	if s.Review != nil && s.Review.State != "" {
		out = append(out, "review:"+s.Review.State)
	}
	return out
}

// summaryMax is the most runes of a list line's summary.
const summaryMax = 60

// summarize is a short view of a record's values: name=value for the
// fields in name order that fit in summaryMax runes, then "…" when some
// did not fit (the first one is cut if it alone is too long).
func summarize(values map[string]json.RawMessage) string {
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	width := 0
	for i, n := range names {
		part := n + "=" + display(values[n])
		if i > 0 {
			part = " " + part
		}
		w := utf8.RuneCountInString(part)
		if width+w > summaryMax {
			if i == 0 {
				b.WriteString(string([]rune(part)[:summaryMax-1]))
			} else {
				b.WriteString(" ")
			}
			b.WriteString("…")
			break
		}
		b.WriteString(part)
		width += w
	}
	// One line a record, whatever the values hold.
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, b.String())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
