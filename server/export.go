package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/internal/export"
	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/gin-gonic/gin"
)

// boolQuery reads an optional true/false query parameter.
func boolQuery(c *gin.Context, name string) (bool, error) {
	v, ok := c.GetQuery(name)
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, sp.Errorf(sp.CodeBadRequest, "%s: must be true or false", name)
	}
	return b, nil
}

// exportData is GET /v1/export (PROTOCOL.md §5): the merged dataset as one
// consistent snapshot, streamed.
func (s *Server) exportData(c *gin.Context) {
	format := c.DefaultQuery("format", export.FormatJSONL)
	if format != export.FormatJSONL && format != export.FormatCSV {
		s.fail(c, sp.Errorf(sp.CodeBadRequest, "format: jsonl or csv"))
		return
	}
	var q records.ExportQuery
	var opt export.Options
	var err error
	for name, dst := range map[string]*bool{"deleted": &q.IncludeDeleted, "bom": &opt.BOM, "review_column": &opt.ReviewColumn} {
		if *dst, err = boolQuery(c, name); err != nil {
			s.fail(c, err)
			return
		}
	}
	q.Form, q.Scope, q.Review = c.Query("form"), c.Query("scope"), c.Query("review")

	started := false
	opt.OnStart = func(snap records.ExportSnapshot) {
		started = true
		h := c.Writer.Header()
		h.Set("X-Snapshot-Seq", strconv.FormatUint(snap.Seq, 10))
		h.Set("X-Snapshot-Cursor", snap.Cursor)
		name := "fieldsync-export-" + strconv.FormatUint(snap.Seq, 10) + "." + format
		h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
		if format == export.FormatCSV {
			h.Set("Content-Type", "text/csv; charset=utf-8")
		} else {
			h.Set("Content-Type", "application/x-ndjson; charset=utf-8")
		}
		c.Status(http.StatusOK)
	}
	// An export may outlast the server's write timeout.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})

	var enc interface {
		records.ExportWriter
		Close() error
	}
	if format == export.FormatCSV {
		enc = export.NewCSV(c.Writer, opt)
	} else {
		enc = export.NewJSONL(c.Writer, opt)
	}
	start := time.Now()
	n, err := s.records.Export(c.Request.Context(), accountOf(c), q, enc)
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		if !started {
			s.fail(c, err)
			return
		}
		// Headers are gone: cut the connection so the client sees a broken
		// transfer, never a file that looks whole.
		s.log.Warn("export cut short", slog.String(keyError, err.Error()), slog.Int("records", n))
		panic(http.ErrAbortHandler)
	}
	if s.metrics != nil {
		s.metrics.ExportRecords.Add(float64(n))
	}
	s.log.Info("export", slog.String("format", format), slog.Int("records", n), slog.Int64(keyDuration, time.Since(start).Milliseconds()))
}
