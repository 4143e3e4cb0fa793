package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// getRecord is GET /v1/records/{id} (PROTOCOL.md §4).
func (s *Server) getRecord(c *gin.Context) {
	v, err := s.records.Get(c.Request.Context(), accountOf(c), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, v)
}

// history is GET /v1/records/{id}/history (PROTOCOL.md §4).
func (s *Server) history(c *gin.Context) {
	h, err := s.records.History(c.Request.Context(), accountOf(c), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"history": h})
}
