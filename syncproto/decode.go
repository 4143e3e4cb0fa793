package syncproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// DecodePush decodes the body of a push (already inflated). It returns an
// *Error with CodeBadJSON when the body is not valid UTF-8 JSON,
// CodeBadRequest when it is JSON of the wrong shape or lacks a device or a
// batch id, and CodeTooLarge for more than MaxBatchItems items. The items
// stay raw: DecodeItem decodes each.
func DecodePush(body []byte) (*PushRequest, error) {
	if !utf8.Valid(body) {
		return nil, Errorf(CodeBadJSON, "body is not valid UTF-8")
	}
	req, ok := scanPush(body)
	var err error
	if !ok {
		req = PushRequest{}
		err = json.Unmarshal(body, &req)
	}
	if err != nil && isDepthError(err) {
		if split, serr := splitPushTokens(body); serr == nil {
			req, err = *split, nil
		}
	}
	if err != nil {
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) || !json.Valid(body) {
			return nil, Errorf(CodeBadJSON, "body is not valid JSON: %s", describeJSONError(err))
		}
		return nil, Errorf(CodeBadRequest, "push body: %s", describeJSONError(err))
	}
	if !IsUUID(req.Device) {
		return nil, Errorf(CodeBadRequest, "device: not a lowercase UUID")
	}
	if !isAnyUUID(req.Batch) {
		return nil, Errorf(CodeBadRequest, "batch: not a UUID")
	}
	if req.Records == nil {
		return nil, Errorf(CodeBadRequest, "records: missing")
	}
	if len(req.Records) > MaxBatchItems {
		return nil, Errorf(CodeTooLarge, "records: %d items, at most %d a batch", len(req.Records), MaxBatchItems)
	}
	return &req, nil
}

// CheckJSON returns an *Error with CodeBadJSON unless body is one valid
// UTF-8 JSON value.
func CheckJSON(body []byte) error {
	if !utf8.Valid(body) {
		return Errorf(CodeBadJSON, "body is not valid UTF-8")
	}
	if !json.Valid(body) {
		var x any
		err := json.Unmarshal(body, &x)
		return Errorf(CodeBadJSON, "body is not valid JSON: %s", describeJSONError(err))
	}
	return nil
}

// DecodeItem decodes and validates one push item: ParseItem, then
// Validate. It returns the item's id when it could be read (for the result
// and the quarantine) and an *Error with CodeInvalidRecord or CodeTooLarge
// when the item is malformed.
func DecodeItem(raw json.RawMessage) (State, error) {
	s, _, err := ReadItem(raw)
	return s, err
}

// ReadItem is DecodeItem that also says whether the item parsed, for a
// caller that treats an item of the wrong shape apart from an invalid one.
// Items of the usual shape are read and checked in one pass.
func ReadItem(raw json.RawMessage) (s State, parsed bool, err error) {
	if err := checkObject(raw); err != nil {
		return State{}, false, err
	}
	s, valuesRead, ok := scanItem(raw)
	if !ok {
		if s, err = parseItemJSON(raw); err != nil {
			return s, false, err
		}
	}
	return s, true, validateItem(s, valuesRead)
}

// ValidateItem is Validate for a push item, which must also carry at least
// one write. It returns Validate's errors first.
func ValidateItem(s State) error { return validateItem(s, false) }

func validateItem(s State, valuesRead bool) error {
	if err := validate(s, valuesRead); err != nil {
		return err
	}
	if len(s.Writes) == 0 {
		return Errorf(CodeInvalidRecord, "writes: an item must carry at least one write")
	}
	return nil
}

// ParseItem decodes one push item without validating it. It returns an
// *Error with CodeInvalidRecord when the item is not a JSON object of the
// item's shape, with the id filled in when it could be read.
func ParseItem(raw json.RawMessage) (State, error) {
	if err := checkObject(raw); err != nil {
		return State{}, err
	}
	if st, _, ok := scanItem(raw); ok {
		return st, nil
	}
	return parseItemJSON(raw)
}

// checkObject returns an *Error with CodeInvalidRecord unless raw starts
// as a JSON object.
func checkObject(raw json.RawMessage) error {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return Errorf(CodeInvalidRecord, "an item must be a JSON object")
	}
	return nil
}

// parseItemJSON is ParseItem through encoding/json, for any item.
func parseItemJSON(raw json.RawMessage) (State, error) {
	var s State
	if err := json.Unmarshal(raw, &s); err != nil {
		var id struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(raw, &id)
		var str string
		if json.Unmarshal(id.ID, &str) == nil {
			s = State{ID: str}
		} else {
			s = State{}
		}
		return s, Errorf(CodeInvalidRecord, "item: %s", describeJSONError(err))
	}
	return s, nil
}

// describeJSONError says what is wrong with a JSON document without quoting
// its content.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		where := typeErr.Field
		if where == "" {
			where = "value"
		}
		return where + ": expected " + typeErr.Type.String() + ", got JSON " + typeErr.Value
	case errors.As(err, &syntaxErr):
		return "syntax error at byte " + strconv.FormatInt(syntaxErr.Offset, 10)
	case err == nil:
		return "invalid"
	default:
		return "malformed"
	}
}

// isAnyUUID accepts a UUID in its 36-character form, any case.
func isAnyUUID(s string) bool { return IsUUID(string(bytes.ToLower([]byte(s)))) }
