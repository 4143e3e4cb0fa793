package syncproto

import (
	"errors"
	"fmt"
)

// Code is a stable error code. Codes are part of the wire contract
// (PROTOCOL.md §7): clients switch on them, so they never change.
type Code string

// The error codes of PROTOCOL.md §7, and the few fieldsync adds.
const (
	CodeBadJSON             Code = "bad_json"
	CodeInvalidRecord       Code = "invalid_record"
	CodeTooLarge            Code = "too_large"
	CodeBadRequest          Code = "bad_request"
	CodeUnauthorized        Code = "unauthorized"
	CodeForbidden           Code = "forbidden"
	CodeNotFound            Code = "not_found"
	CodeBatchReused         Code = "batch_reused"
	CodeStaleResolution     Code = "stale_resolution"
	CodeBadCursor           Code = "bad_cursor"
	CodeResyncRequired      Code = "resync_required"
	CodeUnsupportedEncoding Code = "unsupported_encoding"
	CodeForgedClock         Code = "forged_clock"
	CodeScopeMismatch       Code = "scope_mismatch"
	// Extensions.
	CodeRateLimited         Code = "rate_limited"
	CodeInsufficientStorage Code = "insufficient_storage"
	CodeUnavailable         Code = "unavailable"
	CodeInternal            Code = "internal"
)

// Error is an error with a stable code and a message for people. It is the
// body of every error answer: {"error": {"code": ..., "message": ...}}.
// Messages never contain field values: they may be personal data.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is or wraps an *Error, and
// CodeInternal otherwise.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the message of err if it is or wraps an *Error, and
// "internal error" otherwise, so that internal details never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
