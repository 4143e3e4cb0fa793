package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/gin-gonic/gin"
)

// statusOf is the one table from error codes to HTTP statuses
// (PROTOCOL.md §7). Per-item codes (forged_clock, scope_mismatch) appear
// here only for completeness: they answer inside a 200 push.
var statusOf = map[sp.Code]int{
	sp.CodeBadJSON:             http.StatusBadRequest,
	sp.CodeInvalidRecord:       http.StatusBadRequest,
	sp.CodeTooLarge:            http.StatusRequestEntityTooLarge,
	sp.CodeBadRequest:          http.StatusBadRequest,
	sp.CodeUnauthorized:        http.StatusUnauthorized,
	sp.CodeForbidden:           http.StatusForbidden,
	sp.CodeNotFound:            http.StatusNotFound,
	sp.CodeBatchReused:         http.StatusConflict,
	sp.CodeStaleResolution:     http.StatusConflict,
	sp.CodeBadCursor:           http.StatusBadRequest,
	sp.CodeResyncRequired:      http.StatusGone,
	sp.CodeUnsupportedEncoding: http.StatusUnsupportedMediaType,
	sp.CodeForgedClock:         http.StatusBadRequest,
	sp.CodeScopeMismatch:       http.StatusBadRequest,
	sp.CodeRateLimited:         http.StatusTooManyRequests,
	sp.CodeInsufficientStorage: http.StatusInsufficientStorage,
	sp.CodeUnavailable:         http.StatusServiceUnavailable,
	sp.CodeInternal:            http.StatusInternalServerError,
}

// fail answers with an error. An error that is not an *sp.Error is
// internal: it is logged here, once, and the client sees "internal error".
func (s *Server) fail(c *gin.Context, err error) {
	var e *sp.Error
	if !errors.As(err, &e) {
		switch {
		case errors.Is(err, context.Canceled):
			e = sp.Errorf(sp.CodeUnavailable, "request cancelled")
		case isNoSpace(err):
			s.log.Error("storage full", slog.String(keyRoute, c.FullPath()), slog.String(keyError, err.Error()))
			e = sp.Errorf(sp.CodeInsufficientStorage, "the server's disk is full; nothing of this request was stored, retry later")
		default:
			s.log.Error("internal error", slog.String(keyRoute, c.FullPath()), slog.String(keyError, err.Error()))
			e = sp.Errorf(sp.CodeInternal, "internal error")
		}
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	c.Set(ctxErrorCode, string(e.Code))
	writeJSON(c, status, sp.ErrorBody{Error: e})
	c.Abort()
}
