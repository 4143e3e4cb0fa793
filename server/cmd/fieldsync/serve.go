package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/fleet"
	"github.com/fieldsync/fieldsync/internal/metrics"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store"
	"github.com/fieldsync/fieldsync/server"
)

// Config is the server's configuration, with its defaults in defaultConfig.
type Config struct {
	Addr              string
	Data              string
	LogFormat         string
	LogLevel          string
	ShutdownTimeout   time.Duration
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	RatePerSecond     float64
	RateBurst         int
	MaxSkew           time.Duration
	StaleDays         int
	MemoryLimit       string
	PushInFlight      int
	DebugAddr         string
}

func defaultConfig() Config {
	return Config{
		Addr: "127.0.0.1:8080", Data: "./data", LogFormat: "text", LogLevel: "info",
		ShutdownTimeout: 30 * time.Second, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute, WriteTimeout: 10 * time.Minute, IdleTimeout: 2 * time.Minute,
		RatePerSecond: 500, RateBurst: 2000, MaxSkew: 2 * time.Minute, StaleDays: 3, MemoryLimit: "256MiB", PushInFlight: records.DefaultPushInFlight,
	}
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on")
	fs.StringVar(&cfg.Data, "data", cfg.Data, "data directory (created if missing)")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text or json")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level: debug, info, warn, error")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long to let requests in flight finish on SIGTERM/SIGINT")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout, "longest time to read a request's headers (a slow client is cut off)")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "longest time to read one request, body included")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "longest time to write one response")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "how long an idle keep-alive connection stays open")
	fs.Float64Var(&cfg.RatePerSecond, "rate-limit", cfg.RatePerSecond, "requests per second allowed to one token (0: no limit; admin tokens are never limited)")
	fs.IntVar(&cfg.RateBurst, "rate-burst", cfg.RateBurst, "requests one token may send at once above its rate")
	fs.DurationVar(&cfg.MaxSkew, "max-skew", cfg.MaxSkew, "flag devices whose clock is further than this from the server's")
	fs.IntVar(&cfg.StaleDays, "stale-days", cfg.StaleDays, "flag devices that have not synced for this many days")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", cfg.DebugAddr, "if set (e.g. 127.0.0.1:6060), serve Go's pprof profiles there, apart from the API; keep it on loopback")
	fs.IntVar(&cfg.PushInFlight, "push-in-flight", cfg.PushInFlight, "records of concurrent pushes decoded and applied at once (at least one full batch); further pushes wait their turn")
	fs.StringVar(&cfg.MemoryLimit, "memory-limit", cfg.MemoryLimit, "soft memory limit for the Go runtime (e.g. 256MiB, 1GiB; 0 for none); GOMEMLIMIT in the environment wins")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	if err := setMemoryLimit(cfg.MemoryLimit); err != nil {
		return err
	}

	var st *store.Store
	m := metrics.New(func() float64 {
		n, err := st.CountConflicts(context.Background())
		if err != nil {
			return -1
		}
		return float64(n)
	})
	st, err = store.Open(cfg.Data, store.Options{OnCommit: m.ObserveCommit})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the database", slog.String("error", err.Error()))
		}
	}()
	accounts := auth.NewService(st, nil)
	if err := firstAdmin(ctx, st, accounts, cfg.Data, log); err != nil {
		return err
	}
	tracker, err := fleet.NewTracker(ctx, st, log)
	if err != nil {
		return err
	}
	api := server.New(server.Options{
		Records:         records.NewService(st, records.Options{Logger: log, PushInFlight: cfg.PushInFlight}),
		Auth:            accounts,
		Logger:          log,
		Metrics:         m,
		Fleet:           tracker,
		FleetThresholds: fleet.Thresholds{MaxSkew: cfg.MaxSkew, StaleDays: cfg.StaleDays},
		Backuper:        st,
		RateLimit:       server.RateLimit{PerSecond: cfg.RatePerSecond, Burst: cfg.RateBurst},
	})
	fleetCtx, stopFleet := context.WithCancel(context.Background())
	fleetDone := make(chan struct{})
	go func() { tracker.Run(fleetCtx, 10*time.Second); close(fleetDone) }()
	defer func() { stopFleet(); <-fleetDone }()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.DebugAddr != "" {
		if err := serveDebug(cfg.DebugAddr, log); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", slog.String("addr", ln.Addr().String()), slog.String("data", cfg.Data), slog.String("version", version()))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", slog.String("error", err.Error()))
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// firstAdmin creates the first admin account of a new database: with the
// token in FIELDSYNC_ADMIN_TOKEN, or with a generated one written to
// DATA/admin.token (mode 0600). The token is never logged.
func firstAdmin(ctx context.Context, st *store.Store, accounts *auth.Service, dir string, log *slog.Logger) error {
	envToken := os.Getenv("FIELDSYNC_ADMIN_TOKEN")
	a, token, err := accounts.NewAccount(auth.RoleAdmin, "admin", nil, envToken)
	if err != nil {
		return err
	}
	created, err := st.CreateFirstAdmin(ctx, a)
	if err != nil || !created {
		return err
	}
	if envToken != "" {
		log.Info("first admin created with the token from FIELDSYNC_ADMIN_TOKEN", slog.String("admin", a.ID))
		return nil
	}
	path := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	log.Info("first admin created; its token is in the data directory", slog.String("admin", a.ID), slog.String("file", path))
	return nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

// setMemoryLimit sets the runtime's soft memory limit, so the collector
// works harder before the process grows past it (many large pushes at
// once). GOMEMLIMIT, when set, is left as it is.
func setMemoryLimit(spec string) error {
	if os.Getenv("GOMEMLIMIT") != "" || spec == "" || spec == "0" {
		return nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(spec, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v <= 0 {
				break
			}
			debug.SetMemoryLimit(v * u.mult)
			return nil
		}
	}
	return fmt.Errorf("--memory-limit %q: use a size like 256MiB or 1GiB", spec)
}
