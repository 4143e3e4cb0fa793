package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/fieldsync/fieldsync/internal/launch"
	"io"
	"net/http"
	"time"
)

// startServer runs the real binary on loopback (internal/launch); the
// error carries the server's output when it does not come up.
func startServer(ctx context.Context, binary, dir string) (*launch.Server, error) {
	var log bytes.Buffer
	s, err := launch.Start(ctx, launch.Options{Binary: binary, DataDir: dir, Log: &log, StartTimeout: 10 * time.Second, StopTimeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, log.String())
	}
	return s, nil
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
