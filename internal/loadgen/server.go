package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/fieldsync/fieldsync/internal/launch"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// server is one run of the fieldsync binary on loopback over its own data
// directory, its output in DIR.log.
type server struct {
	*launch.Server
	url     string
	admin   string
	dataDir string
	logPath string
	log     *os.File
}

// startServer runs `BIN serve ... --rate-limit 0 extra...` (internal/launch)
// and waits for /healthz; on failure the error carries the end of its log.
func startServer(ctx context.Context, bin, dataDir string, extra []string) (*server, error) {
	logPath := dataDir + ".log"
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	ls, err := launch.Start(ctx, launch.Options{Binary: bin, DataDir: dataDir, Args: append([]string{"--rate-limit", "0"}, extra...), Log: logf, SysProcAttr: childAttr()})
	if err != nil {
		logf.Close()
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w; its log:\n%s", err, tailFile(logPath, 4000))
	}
	return &server{Server: ls, url: ls.URL, admin: ls.AdminToken, dataDir: dataDir, logPath: logPath, log: logf}, nil
}

// stop sends SIGTERM and waits up to 30s for the server to finish, then
// kills it. It is safe to call more than once.
func (s *server) stop() error {
	err := s.Stop()
	s.log.Close()
	return err
}

func (s *server) pid() int { return s.Pid() }

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
