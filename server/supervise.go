package server

import (
	"net/http"
	"strconv"

	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/gin-gonic/gin"
)

// queryLimit reads ?limit=, def when absent; an *sp.Error with
// CodeBadRequest when it is not a number from 1 to max.
func queryLimit(c *gin.Context, def, max int) (int, error) {
	l, ok := c.GetQuery("limit")
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > max {
		return 0, sp.Errorf(sp.CodeBadRequest, "limit: must be a whole number from 1 to %d", max)
	}
	return n, nil
}

// conflicts is GET /v1/conflicts (PROTOCOL.md §4).
func (s *Server) conflicts(c *gin.Context) {
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		s.fail(c, err)
		return
	}
	page, err := s.records.Conflicts(c.Request.Context(), accountOf(c), records.ConflictQuery{
		Scope: c.Query("scope"), Form: c.Query("form"), Limit: limit, After: c.Query("after"),
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, page)
}

// resolve is POST /v1/conflicts/{id}/resolve (PROTOCOL.md §4).
func (s *Server) resolve(c *gin.Context) {
	var req records.Resolution
	if err := bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	v, err := s.records.Resolve(c.Request.Context(), accountOf(c), c.Param("id"), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, v)
}

// review is POST /v1/records/{id}/review (PROTOCOL.md §4).
func (s *Server) review(c *gin.Context) {
	var req records.ReviewRequest
	if err := bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	v, err := s.records.SetReview(c.Request.Context(), accountOf(c), c.Param("id"), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, v)
}

// listRecords is GET /v1/records (an extension for review work).
func (s *Server) listRecords(c *gin.Context) {
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		s.fail(c, err)
		return
	}
	page, err := s.records.List(c.Request.Context(), accountOf(c), records.ListQuery{
		Scope: c.Query("scope"), Form: c.Query("form"), Review: c.Query("review"), Limit: limit, After: c.Query("after"),
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, page)
}
