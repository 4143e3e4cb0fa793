package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// Backuper writes a consistent copy of the database.
type Backuper interface {
	Backup(ctx context.Context, w io.Writer, size func(int64)) (int64, error)
}

// backup is GET /v1/admin/backup: a hot backup, streamed while pushes go on.
func (s *Server) backup(c *gin.Context) {
	if s.backuper == nil {
		s.fail(c, errNoRoute)
		return
	}
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	started := false
	n, err := s.backuper.Backup(c.Request.Context(), c.Writer, func(size int64) {
		started = true
		h := c.Writer.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", `attachment; filename="fieldsync-backup-`+s.now().UTC().Format("20060102T150405Z")+`.db"`)
		h.Set("X-Backup-Size", strconv.FormatInt(size, 10))
		c.Status(http.StatusOK)
	})
	if err != nil {
		if !started {
			s.fail(c, err)
			return
		}
		s.log.Warn("backup cut short", slog.String(keyError, err.Error()))
		panic(http.ErrAbortHandler)
	}
	s.log.Info("backup", slog.Int64("bytes", n))
}
