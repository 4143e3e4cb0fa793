package server

import (
	"net/http"
	"strconv"

	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/gin-gonic/gin"
)

// push is POST /v1/sync/push (PROTOCOL.md §2).
func (s *Server) push(c *gin.Context) {
	budget := newBodyBudget(s.largeBodies, c.Request.Context())
	defer budget.release()
	body, err := readBody(c, sp.MaxBodyBytes, budget)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxBytesIn, len(body))
	resp, err := s.records.Push(c.Request.Context(), accountOf(c), body)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.noteDevice(c, true, len(resp.Results))
	s.observePush(resp)
	c.Data(http.StatusOK, jsonContentType, append(resp.AppendJSON(make([]byte, 0, 64+160*len(resp.Results))), '\n'))
}

// pull is GET /v1/sync/pull (PROTOCOL.md §3).
func (s *Server) pull(c *gin.Context) {
	q := records.PullQuery{Since: c.Query("since"), Form: c.Query("form"), Limit: sp.DefaultPull}
	if l, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(l)
		if err != nil {
			s.fail(c, sp.Errorf(sp.CodeBadRequest, "limit: must be a whole number from 1 to %d", sp.MaxPull))
			return
		}
		q.Limit = n
	}
	if coding := pullCoding(c.GetHeader("Accept-Encoding")); coding != "" {
		page, err := s.records.PullEncoded(c.Request.Context(), accountOf(c), q, coding, encodePage(coding))
		if err != nil {
			s.fail(c, err)
			return
		}
		s.noteDevice(c, false, 0)
		c.Header("Vary", "Accept-Encoding")
		if page.Coding != "" {
			c.Header("Content-Encoding", page.Coding) // the middleware leaves the body as it is
		}
		c.Header("Content-Length", strconv.Itoa(len(page.Body)))
		c.Data(http.StatusOK, jsonContentType, page.Body)
		return
	}
	resp, err := s.records.Pull(c.Request.Context(), accountOf(c), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.noteDevice(c, false, 0)
	writePullPage(c, resp)
	resp.Release()
}

// writePullPage writes a pull page without re-encoding its records: each
// is the state JSON as stored, already valid and compact.
func writePullPage(c *gin.Context, p *records.PullPage) {
	c.Header("Content-Type", jsonContentType)
	// Known before the first byte, so clients can size their buffer (and
	// show progress); compression, when it applies, drops it.
	c.Header("Content-Length", strconv.Itoa(p.Size()))
	c.Status(http.StatusOK)
	if _, err := p.WriteTo(c.Writer); err != nil {
		c.Error(err) // the client went away: nothing more to tell it
	}
}
