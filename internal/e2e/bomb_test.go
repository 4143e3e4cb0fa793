package e2e

// Decompression bombs are cut off while inflating (PROTOCOL.md §7), fast,
// and with bounded memory: the server process's RSS is read from
// /proc/PID/status around concurrent 1 GiB bombs.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// bombServerPID is the pid of the server process now running.
func bombServerPID(t testing.TB, s *Server) int {
	t.Helper()
	p := s.current()
	if p == nil || p.exited() || p.cmd.Process == nil {
		t.Fatal("the server is not running")
	}
	return p.cmd.Process.Pid
}

// procMemory is the memory figures of /proc/PID/status, in bytes.
type procMemory struct {
	RSS, HWM int64
}

func (m procMemory) String() string {
	return fmt.Sprintf("VmRSS %.1f MiB, VmHWM %.1f MiB", float64(m.RSS)/(1<<20), float64(m.HWM)/(1<<20))
}

func readProcMemory(pid int) (procMemory, error) {
	var m procMemory
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSS = n << 10
		case "VmHWM":
			m.HWM = n << 10
		}
	}
	if m.RSS == 0 || m.HWM == 0 {
		return m, fmt.Errorf("/proc/%d/status has no VmRSS or VmHWM", pid)
	}
	return m, sc.Err()
}

// resetHWM asks the kernel to restart VmHWM from the current RSS; false
// when it refuses.
func resetHWM(pid int) bool {
	return os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0) == nil
}

// bombBody is a push whose records array holds size bytes of white space
// (valid JSON once inflated, were it not so large), compressed. It is made
// of concatenated members (gzip) or frames (zstd), which both formats
// allow, so that the test compresses 1 MiB once rather than the whole body;
// "none" sends it as it is.
func bombBody(t testing.TB, encoding, device string, size int64) []byte {
	t.Helper()
	head := []byte(`{"device":"` + device + `","batch":"` + newID() + `","records":[`)
	tail := []byte(`]}`)
	chunk := bytes.Repeat([]byte(" "), 1<<20)
	if encoding == "none" {
		return slices.Concat(head, bytes.Repeat([]byte(" "), int(size)), tail)
	}
	member := func(b []byte) []byte {
		var out bytes.Buffer
		var zw io.WriteCloser
		var err error
		switch encoding {
		case "zstd":
			zw, err = zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
		case "gzip":
			zw, err = gzip.NewWriterLevel(&out, gzip.BestCompression)
		default:
			err = fmt.Errorf("unknown encoding %q", encoding)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	var out bytes.Buffer
	out.Write(member(head))
	spaces := member(chunk)
	for n := int64(0); n < size; n += int64(len(chunk)) {
		out.Write(spaces)
	}
	out.Write(member(tail))
	return out.Bytes()
}

// Concurrent 1 GiB bombs, zstd and gzip: each is answered 413 too_large
// within a bounded time, the server's peak RSS stays under a bound, and the
// server is healthy afterwards.
func TestBombMemory(t *testing.T) {
	const (
		inflated = 1 << 30
		maxTime  = 20 * time.Second
		maxHWM   = 250 << 20
	)
	// Each kind on a fresh server, since the Go runtime keeps memory it
	// once used: 5 bombs of 1 GiB in zstd and in gzip, 20 at once (memory
	// must not grow with the number of bombs in flight), then, for
	// comparison, honest bodies just over the limit sent as they are (a
	// bomb should cost no more than they do).
	peaks := map[string]int64{}
	for _, tc := range []struct {
		encoding string
		size     int64
		bombs    int
	}{{"zstd", inflated, 5}, {"gzip", inflated, 5}, {"zstd", inflated, 20}, {"none", 33 << 20, 5}} {
		encoding, bombs := tc.encoding, tc.bombs
		kind := fmt.Sprintf("%s×%d", encoding, bombs)
		t.Run(kind, func(t *testing.T) {
			s := StartServer(t, filepath.Join(t.TempDir(), "data"))
			d := s.NewDevice(t, "bomb tablet", "bomb-scope")
			d.Create(t, "bomb-form", map[string]any{"x": 1})
			d.PushChanges(t)
			pid := bombServerPID(t, s)
			body := bombBody(t, encoding, d.ID, tc.size)
			headers := map[string]string{"Content-Encoding": encoding}
			if encoding == "none" {
				headers = nil
			}
			before, err := readProcMemory(pid)
			if err != nil {
				t.Fatal(err)
			}
			reset := resetHWM(pid)

			// Sample RSS while the bombs land, in case VmHWM could not be
			// reset.
			stop := make(chan struct{})
			var peakRSS int64
			var sampler sync.WaitGroup
			sampler.Go(func() {
				for {
					if m, err := readProcMemory(pid); err == nil && m.RSS > peakRSS {
						peakRSS = m.RSS
					}
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			})

			var wg sync.WaitGroup
			took := make([]time.Duration, bombs)
			start := time.Now()
			for i := range bombs {
				wg.Go(func() {
					t0 := time.Now()
					resp, rb, err := s.do(http.MethodPost, "/v1/sync/push", d.Token, body, headers)
					took[i] = time.Since(t0)
					if err != nil {
						t.Errorf("bomb %d: %v", i, err)
						return
					}
					wantError(t, fmt.Sprintf("%s body %d (%d bytes → %d MiB)", encoding, i, len(body), tc.size>>20), resp, rb, http.StatusRequestEntityTooLarge, syncproto.CodeTooLarge)
				})
			}
			wg.Wait()
			all := time.Since(start)
			close(stop)
			sampler.Wait()
			after, err := readProcMemory(pid)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d concurrent bodies (%s) of %d bytes each, %d MiB inflated: answered in %v (slowest %v)",
				bombs, encoding, len(body), tc.size>>20, all.Round(time.Millisecond), slowest(took).Round(time.Millisecond))
			t.Logf("server memory: before %v; after %v (VmHWM reset before the bombs: %v); peak sampled VmRSS %.1f MiB",
				before, after, reset, float64(peakRSS)/(1<<20))
			for i, d := range took {
				if d > maxTime {
					t.Errorf("bomb %d answered after %v, want within %v", i, d, maxTime)
				}
			}
			peak := max(after.HWM, peakRSS)
			if !reset {
				peak = peakRSS
				if after.HWM > maxHWM {
					t.Logf("VmHWM %d MiB includes what came before the bombs (not reset)", after.HWM>>20)
				}
			}
			peaks[kind] = peak
			if encoding != "none" && peak > maxHWM {
				t.Errorf("peak memory during the bombs %.1f MiB, want under %d MiB", float64(peak)/(1<<20), maxHWM>>20)
			}
			// Still healthy, and the record is still there.
			if resp, _ := s.Do(t, http.MethodGet, "/healthz", "", nil, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("after the bombs: /healthz %d", resp.StatusCode)
			}
			if all, _ := s.PullAll(t, d.Token); len(all) != 1 {
				t.Errorf("after the bombs: %d records pulled, want 1", len(all))
			}
		})
	}

	t.Logf("peak server memory: 5 honest 33 MiB bodies %.1f MiB; 1 GiB bombs: 5 zstd %.1f MiB, 5 gzip %.1f MiB, 20 zstd %.1f MiB (bound %d MiB)",
		float64(peaks["none×5"])/(1<<20), float64(peaks["zstd×5"])/(1<<20), float64(peaks["gzip×5"])/(1<<20), float64(peaks["zstd×20"])/(1<<20), maxHWM>>20)
}

func slowest(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
