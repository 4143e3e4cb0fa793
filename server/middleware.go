package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/gin-gonic/gin"
)

var (
	errNoRoute  = sp.Errorf(sp.CodeNotFound, "no such endpoint")
	errNoMethod = sp.Errorf(sp.CodeNotFound, "this endpoint does not answer that method")
)

// logRequests logs one line per request: route pattern (never the raw URL or
// query), status, time, the caller's id and role, and the error code. It
// never logs bodies, tokens or field values.
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	attrs := []slog.Attr{
		slog.String(keyMethod, c.Request.Method),
		slog.String(keyRoute, routeOf(c)),
		slog.Int(keyStatus, c.Writer.Status()),
		slog.Int64(keyDuration, time.Since(start).Milliseconds()),
		slog.Int(keyBytesOut, c.Writer.Size()),
	}
	if a := accountOf(c); a != nil {
		attrs = append(attrs, slog.String(keyActor, a.ID), slog.String(keyRole, string(a.Role)))
	}
	if code, ok := c.Get(ctxErrorCode); ok {
		attrs = append(attrs, slog.Any(keyCode, code))
	}
	if n, ok := c.Get(ctxBytesIn); ok {
		attrs = append(attrs, slog.Any(keyBytesIn, n))
	}
	level := slog.LevelInfo
	if c.Writer.Status() >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(c.Request.Context(), level, "request", attrs...)
}

func routeOf(c *gin.Context) string {
	if p := c.FullPath(); p != "" {
		return p
	}
	return "unmatched"
}

// recoverPanics turns a panic into a logged internal error: one bad request
// never takes the server down.
func (s *Server) recoverPanics(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.fail(c, fmt.Errorf("panic: %v", r))
		}
	}()
	c.Next()
}

// authenticate requires a valid bearer token and puts its account in the
// request's context.
func (s *Server) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	// The scheme is case-insensitive (RFC 9110 §11.1).
	ok := len(h) > 7 && strings.EqualFold(h[:7], "Bearer ")
	token := ""
	if ok {
		token = h[7:]
	}
	if !ok {
		s.fail(c, sp.Errorf(sp.CodeUnauthorized, "Authorization: Bearer TOKEN is required"))
		return
	}
	a, err := s.auth.Authenticate(c.Request.Context(), strings.TrimSpace(token))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxAccount, a)
	c.Request = c.Request.WithContext(auth.WithAccount(c.Request.Context(), a))
	c.Next()
}

// requireRole lets only the given roles through.
func (s *Server) requireRole(roles ...auth.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		a := accountOf(c)
		for _, r := range roles {
			if a != nil && a.Role == r {
				c.Next()
				return
			}
		}
		s.fail(c, sp.Errorf(sp.CodeForbidden, "this endpoint is for %s accounts", joinRoles(roles)))
	}
}

func joinRoles(roles []auth.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

func accountOf(c *gin.Context) *auth.Account {
	v, ok := c.Get(ctxAccount)
	if !ok {
		return nil
	}
	a, _ := v.(*auth.Account)
	return a
}
