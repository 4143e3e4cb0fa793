package devicecli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// parseFields reads FIELD=VALUE and FIELD:=JSON arguments into the values
// of one save: a json.RawMessage for JSON, a string otherwise. Errors name
// the field, never its value (values may be personal data).
func parseFields(args []string) (map[string]any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no fields given: add FIELD=VALUE arguments")
	}
	out := make(map[string]any, len(args))
	for i, arg := range args {
		name, v, err := parseField(arg)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("field %q given twice", name)
		}
		out[name] = v
	}
	return out, nil
}

func parseField(arg string) (string, any, error) {
	name, raw, ok := strings.Cut(arg, "=")
	if !ok {
		return "", nil, fmt.Errorf("%q: want FIELD=VALUE or FIELD:=JSON", cutArg(arg))
	}
	forceJSON := false
	if n, ok := strings.CutSuffix(name, ":"); ok {
		name, forceJSON = n, true
	}
	if err := checkFieldName(name); err != nil {
		return "", nil, err
	}
	if !utf8.ValidString(raw) {
		return "", nil, fmt.Errorf("field %q: the value is not valid UTF-8", name)
	}
	if json.Valid([]byte(raw)) {
		return name, json.RawMessage(bytes.TrimSpace([]byte(raw))), nil
	}
	if forceJSON {
		return "", nil, fmt.Errorf("field %q: the value after := is not valid JSON (use = for a plain string)", name)
	}
	return name, raw, nil
}

func checkFieldName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a field name is missing before '='")
	case sp.IsReserved(name):
		return fmt.Errorf("field %q: names starting with _ are reserved (to delete a record use `fieldsync device delete ID`)", cutArg(name))
	case !sp.IsFieldName(name):
		return fmt.Errorf("field %q: bad name: a field name starts with a letter and holds letters, digits, _ and . (at most 128)", cutArg(name))
	}
	return nil
}

// cutArg shortens an argument for an error message.
func cutArg(s string) string {
	if utf8.RuneCountInString(s) > 60 {
		r := []rune(s)
		return string(r[:60]) + "…"
	}
	return s
}
