package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// server is one run of the fieldsync binary on loopback over its own data
// directory.
type server struct {
	url     string
	admin   string
	dataDir string
	logPath string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's result, set before done closes
	log  *os.File

	stopOnce sync.Once
	stopErr  error
}

// startServer runs `BIN serve --addr 127.0.0.1:PORT --data DIR --rate-limit 0`
// with a random FIELDSYNC_ADMIN_TOKEN and waits for /healthz. Its output
// goes to DIR.log. A port found free may be taken before the server binds
// it: it tries three ports.
func startServer(ctx context.Context, bin, dataDir string) (*server, error) {
	var err error
	for range 3 {
		var s *server
		if s, err = tryStart(ctx, bin, dataDir); err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func tryStart(ctx context.Context, bin, dataDir string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	admin := "bench-admin-" + randomHex(24)
	logPath := dataDir + ".log"
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "serve", "--addr", addr, "--data", dataDir, "--rate-limit", "0")
	cmd.Env = append(os.Environ(), "FIELDSYNC_ADMIN_TOKEN="+admin)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &server{url: "http://" + addr, admin: admin, dataDir: dataDir, logPath: logPath, cmd: cmd, done: make(chan struct{}), log: logf}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()

	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-s.done:
			s.stop()
			return nil, fmt.Errorf("the server exited before answering /healthz (%v); its log:\n%s", s.err, tailFile(logPath, 4000))
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/healthz", nil)
		if resp, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			s.stop()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("the server did not answer /healthz within 20s; its log:\n%s", tailFile(logPath, 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits up to 30s for the server to finish, then
// kills it. It is safe to call more than once.
func (s *server) stop() error {
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
				s.stopErr = errors.New("the server did not stop within 30s of SIGTERM and was killed")
			}
		}
		s.log.Close()
	})
	return s.stopErr
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// dbBytes is the size of the files in the data directory.
func (s *server) dbBytes() int64 {
	var n int64
	filepath.WalkDir(s.dataDir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// device is an enrolled device.
type device struct {
	ID    string `json:"device"`
	Token string `json:"token"`
}

// enroll creates n devices in the bench scope through POST
// /v1/admin/devices, eight at a time.
func enroll(ctx context.Context, hc *http.Client, s *server, n int, label string) ([]device, error) {
	devs := make([]device, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range min(8, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				body, _ := json.Marshal(map[string]any{"label": fmt.Sprintf("%s %d", label, i), "scopes": []string{benchScope}})
				var d device
				if err := doJSON(ctx, hc, "POST", s.url+"/v1/admin/devices", s.admin, body, 201, &d); err != nil {
					errs <- fmt.Errorf("enrolling device %d: %w", i, err)
					return
				}
				devs[i] = d
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return devs, nil
}

// doJSON sends body (if any) and decodes a JSON answer of status want into
// out.
func doJSON(ctx context.Context, hc *http.Client, method, url, token string, body []byte, want int, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, cut(b, 300))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// wireCounter counts the bytes read from and written to the connections of
// a transport: the bytes on the wire above TCP (headers and framing
// included).
type wireCounter struct{ read, written atomic.Int64 }

type countedConn struct {
	net.Conn
	c *wireCounter
}

func (c countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.c.read.Add(int64(n))
	return n, err
}

func (c countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.c.written.Add(int64(n))
	return n, err
}

// newTransport returns a transport for loopback with up to conns idle
// connections kept, no proxy and no transparent decompression (the
// generator sets Accept-Encoding itself). When wc is not nil it counts the
// bytes on the wire.
func newTransport(conns int, wc *wireCounter) *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil || wc == nil {
				return c, err
			}
			return countedConn{Conn: c, c: wc}, nil
		},
	}
	return tr
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func cut(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// tailFile returns the last n bytes of a file, for error messages.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return "(no log: " + err.Error() + ")"
	}
	return string(b)
}

// newClient is an HTTP client for loopback keeping up to conns idle
// connections.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: newTransport(conns, nil), Timeout: 5 * time.Minute}
}
