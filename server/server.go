// Package server is fieldsync's HTTP API (PROTOCOL.md): routes, middleware
// (authentication, limits, encodings, logs) and thin handlers over the
// record and account services. It is the only package that imports Gin.
package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/fleet"
	"github.com/fieldsync/fieldsync/internal/metrics"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/server/console"
	"github.com/gin-gonic/gin"
	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
)

// Log attribute keys, one spelling each.
const (
	keyRoute    = "route"
	keyMethod   = "method"
	keyStatus   = "status"
	keyDuration = "ms"
	keyActor    = "actor"
	keyRole     = "role"
	keyError    = "error"
	keyCode     = "code"
	keyBytesIn  = "bytes_in"
	keyBytesOut = "bytes_out"
	keyItems    = "items"
	keyBatch    = "batch"
)

// Gin context keys.
const (
	ctxAccount   = "fieldsync.account"
	ctxErrorCode = "fieldsync.error_code"
	ctxBytesIn   = "fieldsync.bytes_in"
)

// Options configure a Server. Records and Auth are required; the rest
// may be left zero.
type Options struct {
	Records *records.Service
	Auth    *auth.Service
	Logger  *slog.Logger
	Now     func() time.Time
	// Metrics, if set, is updated and served at /metrics (admins only).
	Metrics *metrics.Metrics
	// Fleet, if set, tracks devices and serves GET /v1/admin/devices.
	Fleet           *fleet.Tracker
	FleetThresholds fleet.Thresholds
	// Backuper, if set, serves GET /v1/admin/backup.
	Backuper Backuper
	// RateLimit bounds each token's requests; zero turns it off.
	RateLimit RateLimit
}

// Server is the HTTP API.
type Server struct {
	records         *records.Service
	auth            *auth.Service
	log             *slog.Logger
	now             func() time.Time
	metrics         *metrics.Metrics
	fleet           *fleet.Tracker
	fleetThresholds fleet.Thresholds
	backuper        Backuper
	limits          *limiters
	largeBodies     chan struct{} // slots for push bodies over one chunk
	engine          *gin.Engine
}

func init() { gin.SetMode(gin.ReleaseMode) }

// New returns the API server. Its Handler serves every route.
func New(opt Options) *Server {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{records: opt.Records, auth: opt.Auth, log: opt.Logger, now: opt.Now, metrics: opt.Metrics,
		fleet: opt.Fleet, fleetThresholds: opt.FleetThresholds, backuper: opt.Backuper, largeBodies: make(chan struct{}, largeBodySlots)}
	if opt.RateLimit.PerSecond > 0 {
		s.limits = newLimiters(opt.RateLimit)
	}
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(s.logRequests, s.measure, s.recoverPanics)
	e.NoRoute(func(c *gin.Context) { s.fail(c, errNoRoute) })
	e.NoMethod(func(c *gin.Context) { s.fail(c, errNoMethod) })

	healthz := func(c *gin.Context) { writeJSON(c, http.StatusOK, gin.H{"status": "ok"}) }
	e.GET("/healthz", healthz)
	e.HEAD("/healthz", healthz)
	e.GET("/", gin.WrapH(console.Handler()))
	e.GET("/console/*path", gin.WrapH(console.Handler()))

	e.GET("/metrics", s.authenticate, s.requireRole(auth.RoleAdmin), s.metricsHandler())

	v1 := e.Group("/v1", s.authenticate, s.limitRate)
	v1.GET("/whoami", s.whoami)
	v1.POST("/sync/push", s.push)
	v1.GET("/sync/pull", s.pull)
	v1.GET("/records/:id", s.getRecord)
	v1.GET("/records/:id/history", s.history)
	v1.POST("/records/:id/review", s.review)
	v1.GET("/records", s.listRecords)
	v1.GET("/conflicts", s.conflicts)
	v1.POST("/conflicts/:id/resolve", s.resolve)
	v1.GET("/export", s.exportData)

	v1.GET("/admin/devices", s.fleetView) // supervisors and HQ too, for their scopes

	admin := v1.Group("/admin", s.requireRole(auth.RoleAdmin))
	admin.GET("/backup", s.backup)
	admin.POST("/devices", s.createDevice)
	admin.POST("/users", s.createUser)
	admin.GET("/accounts", s.listAccounts)
	admin.DELETE("/tokens/:id", s.revoke)
	admin.GET("/quarantine", s.listQuarantine)
	admin.POST("/quarantine/:id/apply", s.applyQuarantined)

	s.engine = e
	return s
}

// Handler returns the API with response compression: zstd preferred, then
// gzip, as the client's Accept-Encoding allows.
func (s *Server) Handler() http.Handler {
	// zstd at its fastest level (gzhttp's default) and gzip at its fastest:
	// pulls are CPU-bound on small servers, and both still shrink JSON
	// to well under a quarter.
	wrap, err := gzhttp.NewWrapper(gzhttp.EnableZstd(true), gzhttp.PreferZstd(true), gzhttp.MinSize(1024), gzhttp.CompressionLevel(gzip.BestSpeed))
	if err != nil {
		panic(err) // only for invalid static options
	}
	return wrap(s.engine)
}
