// Package loadgen measures a real fieldsync server: it starts the binary on
// loopback over a fresh data directory, enrolls devices through the admin
// API and drives it over HTTP with realistic ~1 KB household assessments
// (PROTOCOL.md §2, §3, §6). It measures durable push throughput from 8 and
// 64 devices, full pull throughput and bytes on the wire with and without
// compression, the sync latency of many devices at once and the server's
// peak memory, and, in the same run, the raw limit of the machine for the
// same bytes (encoding/json and bbolt alone), reporting each figure as a
// ratio to it.
//
// It asserts nothing about speed: it reports. Every loop is bounded and
// the whole run has a deadline; the server is stopped with SIGTERM and the
// temporary directory removed however the run ends.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Defaults.
const (
	DefaultRecords     = 100_000
	QuickRecords       = 10_000
	DefaultSyncDevices = 1000
	QuickSyncDevices   = 100
	DefaultTimeout     = 10 * time.Minute

	BatchSize   = 500  // records a push batch
	PullLimit   = 1000 // records a pull page
	SyncPush    = 20   // records each device pushes in the many-devices run
	pushDevices = 8
	manyPushers = 64
)

// Config configures Run.
type Config struct {
	// BinaryPath is the fieldsync binary to start with `serve` (required).
	BinaryPath string
	// Records ingested, then pulled; rounded up to whole batches of 500.
	// Zero: 100,000, or 10,000 when Quick.
	Records int
	// Quick is a fast smoke run: 10,000 records and 100 devices syncing at
	// once unless Records and SyncDevices say otherwise.
	Quick bool
	// SyncDevices is how many devices sync at once. Zero: 1,000, or 100
	// when Quick.
	SyncDevices int
	// Timeout bounds the whole run. Zero: 10 minutes.
	Timeout time.Duration
	// TempDir is where the temporary directory (the servers' data and the
	// raw bbolt files) goes. Empty: os.TempDir().
	TempDir string
	// Progress, if not nil, receives one line per step.
	Progress io.Writer
	// ServerArgs are more flags for `fieldsync serve`, after the
	// generator's own (e.g. --debug-addr 127.0.0.1:6060 to profile it).
	ServerArgs []string
}

// Machine describes where the run happened.
type Machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	GoVersion  string `json:"go_version"`
	CPUModel   string `json:"cpu_model,omitempty"`
	MemBytes   int64  `json:"mem_bytes,omitempty"`
	Kernel     string `json:"kernel,omitempty"`
	// FileSystem holds the data directories (fsync costs differ widely).
	FileSystem string `json:"file_system,omitempty"`
}

// Settings are the run's parameters.
type Settings struct {
	Quick         bool   `json:"quick"`
	Records       int    `json:"records"`
	BatchSize     int    `json:"batch_size"`
	PullLimit     int    `json:"pull_limit"`
	SyncDevices   int    `json:"sync_devices"`
	SyncPush      int    `json:"sync_push_records"`
	Binary        string `json:"binary"`
	ServerVersion string `json:"server_version,omitempty"`
}

// Memory is the server's memory (from /proc/PID/status).
type Memory struct {
	// PeakRSS is VmHWM after the ingest of Records and a full pull (three,
	// one per encoding). It counts the pages of the database file that
	// bbolt's mmap has touched, as resident file pages.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// RSSAfterPull is VmRSS at that moment, of which RSSAnon is private
	// memory (heap, stacks) and RSSFile mapped file pages.
	RSSAfterPull int64 `json:"rss_after_pull_bytes"`
	RSSAnon      int64 `json:"rss_anon_after_pull_bytes"`
	RSSFile      int64 `json:"rss_file_after_pull_bytes"`
	// PeakRSSAfterSync is VmHWM once the many devices have synced too.
	PeakRSSAfterSync int64 `json:"peak_rss_after_sync_bytes"`
	// PeakRSSPush64 is VmHWM of the second server after the ingest from 64
	// devices.
	PeakRSSPush64 int64 `json:"peak_rss_push64_bytes"`
	// DatasetBytes is the ingested records as JSON; DataDirBytes the server's
	// data directory after the ingest and pulls.
	DatasetBytes int64 `json:"dataset_bytes"`
	DataDirBytes int64 `json:"data_dir_bytes"`
}

// Figure is one headline figure and its ratio to the raw limit.
type Figure struct {
	Name  string  `json:"name"`
	Label string  `json:"label"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Raw is the raw limit (or reference) it is compared with, RawLabel
	// what that is, and Ratio = Value / Raw.
	Raw      float64 `json:"raw"`
	RawLabel string  `json:"raw_label"`
	Ratio    float64 `json:"ratio"`
}

// Report is the outcome of a run.
type Report struct {
	Date     time.Time     `json:"date"`
	Machine  Machine       `json:"machine"`
	Settings Settings      `json:"settings"`
	Figures  []Figure      `json:"figures"`
	Raw      *RawResult    `json:"raw"`
	Push8    *PushResult   `json:"push_8"`
	Push64   *PushResult   `json:"push_64"`
	Pulls    []*PullResult `json:"pulls"`
	Sync     *SyncResult   `json:"sync"`
	Memory   Memory        `json:"memory"`
	Seconds  float64       `json:"seconds"`
	// LoadStart and LoadEnd are the 1-minute load average when the run
	// began and ended: other work on the machine skews every figure.
	LoadStart float64 `json:"load_avg_start"`
	LoadEnd   float64 `json:"load_avg_end"`
}

// Run runs the whole measurement. It returns an error, and no report, if
// any step fails or the deadline passes; the servers are stopped and the
// temporary directory removed either way.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if cfg.BinaryPath == "" {
		return nil, errors.New("loadgen: Config.BinaryPath is required")
	}
	if cfg.Records == 0 {
		cfg.Records = DefaultRecords
		if cfg.Quick {
			cfg.Records = QuickRecords
		}
	}
	if cfg.SyncDevices == 0 {
		cfg.SyncDevices = DefaultSyncDevices
		if cfg.Quick {
			cfg.SyncDevices = QuickSyncDevices
		}
	}
	if cfg.Records < 0 || cfg.SyncDevices < 2 {
		return nil, fmt.Errorf("loadgen: records %d, devices %d: want records ≥ 1 and devices ≥ 2", cfg.Records, cfg.SyncDevices)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	began := time.Now()
	progress := func(format string, a ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "%7.1fs  "+format+"\n", append([]any{time.Since(began).Seconds()}, a...)...)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	defer func() {
		if err != nil && ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("loadgen: the run took longer than %v: %w", cfg.Timeout, err)
		}
	}()

	bin, err := filepath.Abs(cfg.BinaryPath)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("loadgen: the server binary: %w", err)
	}
	root, err := os.MkdirTemp(cfg.TempDir, "fieldsync-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	var servers []*server
	defer func() {
		if err != nil && ctx.Err() == nil && len(servers) > 0 {
			last := servers[len(servers)-1]
			err = fmt.Errorf("%w\nthe end of the server's log:\n%s", err, tailFile(last.logPath, 3000))
		}
		for _, s := range servers {
			if serr := s.stop(); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	start := func(name string) (*server, error) {
		progress("starting %s serve on loopback (data in %s)", filepath.Base(bin), filepath.Join(root, name))
		s, err := startServer(ctx, bin, filepath.Join(root, name), cfg.ServerArgs)
		if err == nil {
			servers = append(servers, s)
		}
		return s, err
	}

	batchesFor := func(n int) int { return (n + BatchSize - 1) / BatchSize }
	nBatches := max(batchesFor(cfg.Records), 1)
	rep = &Report{
		LoadStart: loadAvg(),
		Date:      began.UTC().Truncate(time.Second),
		Machine:   machine(root),
		Settings: Settings{
			Quick: cfg.Quick, Records: nBatches * BatchSize, BatchSize: BatchSize, PullLimit: PullLimit,
			SyncDevices: cfg.SyncDevices, SyncPush: SyncPush, Binary: bin, ServerVersion: serverVersion(ctx, bin),
		},
	}
	total := rep.Settings.Records
	hc := newClient(pushDevices + 1)
	defer hc.CloseIdleConnections()

	// Server A: ingest from 8 devices, full pulls, memory, then many devices.
	a, err := start("a")
	if err != nil {
		return nil, err
	}
	devs, err := enroll(ctx, hc, a, pushDevices, "bench tablet")
	if err != nil {
		return nil, err
	}
	progress("building %d batches of %d records for %d devices", nBatches, BatchSize, pushDevices)
	batches, err := makeBatches(ctx, 1, ids(devs), nBatches, BatchSize)
	if err != nil {
		return nil, err
	}
	rep.Memory.DatasetBytes = datasetBytes(batches)
	progress("%d records, %.1f MB as JSON (%d bytes a record)", total, float64(rep.Memory.DatasetBytes)/1e6, rep.Memory.DatasetBytes/int64(total))

	rawDir := filepath.Join(root, "raw")
	if err := os.Mkdir(rawDir, 0o700); err != nil {
		return nil, err
	}
	ctx = inPhase(ctx, "raw")
	if rep.Raw, err = measureRaw(ctx, rawDir, batches, pushDevices, PullLimit, SyncPush, progress); err != nil {
		return nil, fmt.Errorf("raw limit: %w", err)
	}
	os.RemoveAll(rawDir)

	progress("push: %d records from %d devices, %d a batch", total, pushDevices, BatchSize)
	ctx = inPhase(ctx, "push8")
	cpu := mark(a)
	if rep.Push8, err = pushAll(ctx, hc, a, devs, batches); err != nil {
		return nil, fmt.Errorf("push from %d devices: %w", pushDevices, err)
	}
	rep.Push8.usage = cpu.since()
	batches = nil
	progress("push: %.0f records/s", rep.Push8.RecordsPerS)

	var head string
	ctx = inPhase(ctx, "pull")
	for _, enc := range []string{"identity", "zstd", "gzip"} {
		progress("pull: every record from the start, limit %d, Accept-Encoding: %s", PullLimit, enc)
		cpu := mark(a)
		p, err := pullAll(ctx, a, devs[0].Token, enc, PullLimit, total)
		if err != nil {
			return nil, err
		}
		p.usage = cpu.since()
		progress("pull: %.0f records/s, %.1f MB on the wire", p.RecordsPerS, float64(p.WireBytes)/1e6)
		rep.Pulls = append(rep.Pulls, p)
		head = p.Cursor
	}
	mem, err := procStatus(a.pid())
	if err != nil {
		return nil, err
	}
	rep.Memory.PeakRSS, rep.Memory.RSSAfterPull, rep.Memory.RSSAnon, rep.Memory.RSSFile = mem.HWM, mem.RSS, mem.Anon, mem.File
	rep.Memory.DataDirBytes = a.dbBytes()

	ctx = inPhase(ctx, "setup")
	progress("sync: enrolling %d devices", cfg.SyncDevices)
	many, err := enroll(ctx, hc, a, cfg.SyncDevices, "bench field tablet")
	if err != nil {
		return nil, err
	}
	small, err := makeBatches(ctx, 2, ids(many), cfg.SyncDevices, SyncPush)
	if err != nil {
		return nil, err
	}
	bodies := make([][]byte, len(small))
	for i, b := range small {
		bodies[i] = b.body
	}
	progress("sync: %d devices at once, each pushing %d records then pulling a page of %d", cfg.SyncDevices, SyncPush, PullLimit)
	ctx = inPhase(ctx, "sync")
	cpu = mark(a)
	if rep.Sync, err = syncMany(ctx, a, many, bodies, SyncPush, PullLimit, head); err != nil {
		return nil, fmt.Errorf("sync of %d devices: %w", cfg.SyncDevices, err)
	}
	rep.Sync.usage = cpu.since()
	rep.Sync.RawBackToBackS = float64(cfg.SyncDevices) * rep.Raw.SyncOneMs / 1000
	progress("sync: p50 %.0f ms, p99 %.0f ms, max %.0f ms", rep.Sync.P50Ms, rep.Sync.P99Ms, rep.Sync.MaxMs)
	if mem, err = procStatus(a.pid()); err != nil {
		return nil, err
	}
	rep.Memory.PeakRSSAfterSync = mem.HWM
	progress("stopping the server (SIGTERM)")
	if err := a.stop(); err != nil {
		return nil, err
	}
	os.RemoveAll(a.dataDir)

	// Server B: ingest from 64 devices.
	b, err := start("b")
	if err != nil {
		return nil, err
	}
	devs, err = enroll(ctx, hc, b, manyPushers, "bench tablet")
	if err != nil {
		return nil, err
	}
	n64 := max(nBatches, manyPushers)
	progress("building %d batches of %d records for %d devices", n64, BatchSize, manyPushers)
	if batches, err = makeBatches(ctx, 3, ids(devs), n64, BatchSize); err != nil {
		return nil, err
	}
	progress("push: %d records from %d devices, %d a batch", n64*BatchSize, manyPushers, BatchSize)
	hc64 := newClient(manyPushers)
	defer hc64.CloseIdleConnections()
	ctx = inPhase(ctx, "push64")
	cpu = mark(b)
	if rep.Push64, err = pushAll(ctx, hc64, b, devs, batches); err != nil {
		return nil, fmt.Errorf("push from %d devices: %w", manyPushers, err)
	}
	rep.Push64.usage = cpu.since()
	progress("push: %.0f records/s", rep.Push64.RecordsPerS)
	if mem, err = procStatus(b.pid()); err != nil {
		return nil, err
	}
	rep.Memory.PeakRSSPush64 = mem.HWM
	progress("stopping the server (SIGTERM)")
	if err := b.stop(); err != nil {
		return nil, err
	}

	rep.Figures = figures(rep)
	rep.Seconds = time.Since(began).Seconds()
	rep.LoadEnd = loadAvg()
	return rep, nil
}

// usage is what a phase cost: the CPU seconds of the server and of this
// process, and the bytes the server wrote to storage.
type usage struct {
	ServerCPU   float64 `json:"server_cpu_s"`
	ClientCPU   float64 `json:"client_cpu_s"`
	ServerWrite int64   `json:"server_disk_write_bytes"`
	// ServerWait is how long the server's threads waited, runnable, for a
	// CPU: high when other work (the generator, or anything else on the
	// machine) competes with it.
	ServerWait float64 `json:"server_cpu_wait_s"`
}

type usageMark struct {
	s *server
	u usage
}

func mark(s *server) usageMark {
	return usageMark{s, usage{procCPU(s.pid()), selfCPU(), procWriteBytes(s.pid()), procRunqWait(s.pid())}}
}

// since returns the usage since m.
func (m usageMark) since() usage {
	return usage{procCPU(m.s.pid()) - m.u.ServerCPU, selfCPU() - m.u.ClientCPU, procWriteBytes(m.s.pid()) - m.u.ServerWrite, procRunqWait(m.s.pid()) - m.u.ServerWait}
}

func ids(devs []device) []string {
	out := make([]string, len(devs))
	for i, d := range devs {
		out[i] = d.ID
	}
	return out
}

// serverVersion asks the binary for its version; "" if it cannot say.
func serverVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func machine(dir string) Machine {
	m := Machine{
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GoVersion: runtime.Version(),
		FileSystem: fsType(dir),
	}
	m.CPUModel, m.MemBytes, m.Kernel = hostInfo()
	return m
}

// figures derives the headline figures and their ratios.
func figures(r *Report) []Figure {
	raw := r.Raw
	pushRaw := fmt.Sprintf("decode + bbolt put, %d workers", raw.PushWorkers)
	out := []Figure{
		{Name: "push_8_records_per_s", Label: fmt.Sprintf("push, %d devices (durable)", r.Push8.Devices), Value: r.Push8.RecordsPerS, Unit: "records/s", Raw: raw.PushRPS, RawLabel: pushRaw},
		{Name: "push_64_records_per_s", Label: fmt.Sprintf("push, %d devices (durable)", r.Push64.Devices), Value: r.Push64.RecordsPerS, Unit: "records/s", Raw: raw.PushRPS, RawLabel: pushRaw},
		{Name: "push_8_server_cpu_us_per_record", Label: "  server CPU a record pushed (8 devices)", Value: r.Push8.ServerCPU / float64(r.Push8.Records) * 1e6, Unit: "µs", Raw: raw.PushCPUUs, RawLabel: "CPU a record, decode + bbolt put"},
	}
	for _, p := range r.Pulls {
		var rps float64
		var bytes int64
		var what string
		switch p.Encoding {
		case "zstd":
			rps, bytes, what = raw.ScanZstdRPS, raw.ZstdBytes, "bbolt read → pages → zstd"
		case "gzip":
			rps, bytes, what = raw.ScanGzipRPS, raw.GzipBytes, "bbolt read → pages → gzip"
		default:
			rps, bytes, what = raw.ScanRPS, raw.PageBytes, "bbolt read → pages"
		}
		out = append(out,
			Figure{Name: "pull_" + p.Encoding + "_records_per_s", Label: "full pull, " + p.Encoding, Value: p.RecordsPerS, Unit: "records/s", Raw: rps, RawLabel: what},
			Figure{Name: "pull_" + p.Encoding + "_wire_bytes", Label: "  bytes on the wire", Value: float64(p.WireBytes), Unit: "bytes", Raw: float64(bytes), RawLabel: strings.TrimPrefix(what, "bbolt read → ")},
		)
	}
	s := r.Sync
	lbl := fmt.Sprintf("sync, %d devices at once", s.Devices)
	out = append(out,
		Figure{Name: "sync_p50_ms", Label: lbl + ", p50", Value: s.P50Ms, Unit: "ms", Raw: raw.SyncOneMs, RawLabel: "one device's sync alone"},
		Figure{Name: "sync_p99_ms", Label: lbl + ", p99", Value: s.P99Ms, Unit: "ms", Raw: raw.SyncOneMs, RawLabel: "one device's sync alone"},
		Figure{Name: "sync_max_ms", Label: lbl + ", max", Value: s.MaxMs, Unit: "ms", Raw: raw.SyncOneMs, RawLabel: "one device's sync alone"},
		Figure{Name: "peak_rss_bytes", Label: fmt.Sprintf("server peak RSS, %s ingest + full pull", short(r.Settings.Records)), Value: float64(r.Memory.PeakRSS), Unit: "bytes", Raw: float64(r.Memory.DatasetBytes), RawLabel: "the records as JSON"},
	)
	for i := range out {
		if out[i].Raw > 0 {
			out[i].Ratio = out[i].Value / out[i].Raw
		}
	}
	return out
}

func short(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
