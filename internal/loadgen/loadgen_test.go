package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildServer builds ./server/cmd/fieldsync into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the load generator runs the real server for tens of seconds")
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside the module")
	}
	bin := filepath.Join(t.TempDir(), "fieldsync")
	build := exec.Command("go", "build", "-o", bin, "./server/cmd/fieldsync")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the server: %v\n%s", err, out)
	}
	return bin
}

// `fieldsync bench --quick` runs to the end against the real binary, in
// bounded time, and writes JSON in which every figure is above zero, and
// the generator's CPU profile cut by phase. It asserts no speed.
func TestQuickBench(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "bench.json")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	prof := filepath.Join(t.TempDir(), "generator.pprof")
	cmd := exec.CommandContext(ctx, bin, "bench", "--quick", "--out", out, "--timeout", "5m", "--tmp", dir, "--cpuprofile", prof)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("fieldsync bench --quick: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("fieldsync bench --quick:\n%s", stdout.String())
	for _, want := range []string{"push, 8 devices", "push, 64 devices", "full pull, zstd", "sync, 100 devices at once, p99", "peak RSS", "bbolt put"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the table lacks %q", want)
		}
	}

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	figs, _ := rep["figures"].([]any)
	if len(figs) < 12 {
		t.Fatalf("%d figures in the JSON, want 12 or more", len(figs))
	}
	for _, f := range figs {
		m := f.(map[string]any)
		for _, k := range []string{"value", "raw", "ratio"} {
			if v, _ := m[k].(float64); !(v > 0) {
				t.Errorf("figure %v: %s = %v, want > 0", m["name"], k, m[k])
			}
		}
	}
	for _, section := range []string{"raw", "push_8", "push_64", "sync", "memory"} {
		checkPositive(t, section, rep[section])
	}
	pulls, _ := rep["pulls"].([]any)
	if len(pulls) != 3 {
		t.Errorf("%d pulls, want identity, zstd and gzip", len(pulls))
	}
	for _, p := range pulls {
		checkPositive(t, "pulls", p)
	}
	mach, _ := rep["machine"].(map[string]any)
	if n, _ := mach["num_cpu"].(float64); int(n) != runtime.NumCPU() || mach["goos"] != runtime.GOOS || mach["go_version"] == "" {
		t.Errorf("machine: %v", mach)
	}
	if d, _ := rep["date"].(string); d == "" {
		t.Error("no date")
	}
	tags, err := exec.Command("go", "tool", "pprof", "-tags", bin, prof).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -tags %s: %v\n%s", prof, err, tags)
	}
	// The phases where the generator works for a second or more even on
	// a quick run; a push phase may take too few samples to be sure of one.
	for _, phase := range []string{"raw", "sync"} {
		if !regexp.MustCompile(`\): ` + phase + `\n`).Match(tags) {
			t.Errorf("the generator's profile has no samples of phase %s:\n%s", phase, tags)
		}
	}
	left, _ := os.ReadDir(dir)
	for _, e := range left {
		if e.Name() != "bench.json" {
			t.Errorf("left behind in the temp dir: %s", e.Name())
		}
	}
}

// usageKeys are what a phase cost (CPU seconds, bytes written): they may
// round to zero on a short quick run and are no figure.
var usageKeys = map[string]bool{"server_cpu_s": true, "client_cpu_s": true, "server_disk_write_bytes": true, "server_cpu_wait_s": true}

// checkPositive requires every number of a JSON object to be above zero,
// but the usage.
func checkPositive(t *testing.T, section string, v any) {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s: missing", section)
		return
	}
	for k, x := range m {
		if n, isNum := x.(float64); isNum && !usageKeys[k] && !(n > 0) {
			t.Errorf("%s.%s = %v, want > 0", section, k, n)
		}
	}
}

// syncWriter is a goroutine-safe progress sink that calls on for each
// write.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	on  func(string)
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.on(string(p))
	return len(p), nil
}

// Cancelling a run (Ctrl-C) stops the server and removes its data.
func TestCancelStopsServerAndRemovesData(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	progress := &syncWriter{on: func(line string) {
		if strings.Contains(line, "push:") {
			once.Do(cancel)
		}
	}}
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Config{BinaryPath: bin, Quick: true, TempDir: dir, Progress: progress, Timeout: 3 * time.Minute})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(4 * time.Minute):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel: %v, want context.Canceled\nprogress:\n%s", err, progress.buf.String())
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	// No process still runs over the temp dir.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(dir)) {
			t.Errorf("still running: %s", bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}
