package syncproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// isDepthError reports whether err is encoding/json refusing a document
// nested deeper than it parses (10,000 levels): valid JSON all the same.
func isDepthError(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) && strings.Contains(se.Error(), "exceeded max depth")
}

// splitPushTokens reads a push body token by token, which has no depth
// limit, and returns the request with each item's raw bytes. It is the path
// for a body in which some item nests deeper than encoding/json parses, so
// that item is rejected (and quarantined) on its own instead of the batch.
func splitPushTokens(body []byte) (*PushRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	req := &PushRequest{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		switch key {
		case "device", "batch":
			var s string
			if err := dec.Decode(&s); err != nil {
				return nil, err
			}
			if key == "device" {
				req.Device = s
			} else {
				req.Batch = s
			}
		case "records":
			if t, err := dec.Token(); err != nil || t != json.Delim('[') {
				return nil, errors.New("records: not an array")
			}
			req.Records = []json.RawMessage{}
			for dec.More() {
				start := dec.InputOffset()
				if err := skipValue(dec); err != nil {
					return nil, err
				}
				raw := bytes.TrimLeft(body[start:dec.InputOffset()], " \t\r\n,")
				req.Records = append(req.Records, json.RawMessage(raw))
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
		default:
			if err := skipValue(dec); err != nil {
				return nil, err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return req, nil
}

// skipValue consumes one value, however deep, token by token.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
