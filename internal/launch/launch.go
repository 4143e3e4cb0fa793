// Package launch runs the fieldsync binary as a server on loopback over a
// data directory, with a random first-admin token, and stops it: for the
// demo and the load generator, which drive the real binary over HTTP.
package launch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Options say what to run.
type Options struct {
	Binary  string   // the fieldsync executable
	DataDir string   // --data
	Args    []string // more flags for `serve`
	// Log receives the server's stdout and stderr; nil discards them.
	Log io.Writer
	// SysProcAttr, if set, is the child's (e.g. its own process group).
	SysProcAttr *syscall.SysProcAttr
	// StartTimeout bounds the wait for /healthz; zero means 20 s.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before killing;
	// zero means 30 s.
	StopTimeout time.Duration
}

// Server is one run of the binary.
type Server struct {
	URL        string // http://127.0.0.1:PORT
	AdminToken string

	opt      Options
	cmd      *exec.Cmd
	done     chan struct{}
	err      error // cmd.Wait's result, set before done closes
	stopOnce sync.Once
	stopErr  error
}

// Start runs `BIN serve --addr 127.0.0.1:PORT --data DIR ARGS...` with a
// random FIELDSYNC_ADMIN_TOKEN and waits for /healthz to answer 200. A port
// found free may be taken before the server binds it, so it tries three.
// It returns ctx's error, or one saying the server exited or did not
// answer in time.
func Start(ctx context.Context, opt Options) (*Server, error) {
	if opt.StartTimeout == 0 {
		opt.StartTimeout = 20 * time.Second
	}
	if opt.StopTimeout == 0 {
		opt.StopTimeout = 30 * time.Second
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	var err error
	for range 3 {
		var s *Server
		if s, err = try(ctx, opt); err == nil || ctx.Err() != nil {
			return s, err
		}
	}
	return nil, err
}

func try(ctx context.Context, opt Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + addr, AdminToken: "launch-" + hex.EncodeToString(b), opt: opt, done: make(chan struct{})}
	s.cmd = exec.Command(opt.Binary, append([]string{"serve", "--addr", addr, "--data", opt.DataDir}, opt.Args...)...)
	s.cmd.Env = append(os.Environ(), "FIELDSYNC_ADMIN_TOKEN="+s.AdminToken)
	s.cmd.Stdout, s.cmd.Stderr = opt.Log, opt.Log
	s.cmd.SysProcAttr = opt.SysProcAttr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", opt.Binary, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()

	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(opt.StartTimeout)
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("the server exited before answering /healthz: %v", s.err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/healthz", nil)
		if resp, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			s.Stop()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("the server did not answer /healthz within %v", opt.StartTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for the server to finish, killing it after
// StopTimeout. It is safe to call more than once; it returns an error when
// the server had to be killed.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(s.opt.StopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.done
			s.stopErr = errors.New("the server did not stop within " + s.opt.StopTimeout.String() + " of SIGTERM and was killed")
		}
	})
	return s.stopErr
}

// Pid is the server process's id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }
