package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// demoServer is the real fieldsync binary serving on loopback.
type demoServer struct {
	cmd        *exec.Cmd
	url        string
	adminToken string
	log        bytes.Buffer
}

func startServer(ctx context.Context, binary, dir string) (*demoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	s := &demoServer{url: "http://" + addr, adminToken: "demo-" + hex.EncodeToString(b)}
	s.cmd = exec.Command(binary, "serve", "--addr", addr, "--data", dir)
	s.cmd.Env = append(os.Environ(), "FIELDSYNC_ADMIN_TOKEN="+s.adminToken)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		select {
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.stop()
	return nil, fmt.Errorf("the server did not answer /healthz: %s", s.log.String())
}

// stop sends SIGTERM and waits for the server to finish.
func (s *demoServer) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// account is an enrolled device or user.
type account struct{ id, token string }

// api calls the server's HTTP API with one token.
type api struct{ url, token string }

func (a *api) enroll(ctx context.Context, label string) (account, error) {
	var out struct{ Device, Token string }
	err := a.post(ctx, "/v1/admin/devices", map[string]any{"label": label, "scopes": []string{Scope}}, &out)
	return account{out.Device, out.Token}, err
}

func (a *api) user(ctx context.Context, name, role string, scopes []string) (account, error) {
	var out struct{ User, Token string }
	err := a.post(ctx, "/v1/admin/users", map[string]any{"name": name, "role": role, "scopes": scopes}, &out)
	return account{out.User, out.Token}, err
}

func (a *api) get(ctx context.Context, path string, out any) error {
	return a.do(ctx, "GET", path, nil, out)
}

func (a *api) post(ctx context.Context, path string, body, out any) error {
	return a.do(ctx, "POST", path, body, out)
}

func (a *api) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// raw GETs path and returns the body to read and the headers.
func (a *api) raw(ctx context.Context, path string) (io.ReadCloser, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", a.url+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, nil, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return resp.Body, resp.Header, nil
}
