package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// maxResponseBytes bounds an inflated answer: a pull page of 1,000 records
// is far below it.
const maxResponseBytes = 512 << 20

// ErrGaveUp is matched (errors.Is) by the error Sync returns when the server
// stayed unreachable or overloaded through every retry.
var ErrGaveUp = errors.New("client: gave up retrying")

// RetryError is returned after MaxRetries retries of a request that kept
// failing with a 429, a 5xx or a network error. It matches ErrGaveUp and
// wraps the last failure. Nothing is lost: a pending batch stays on the
// device and is resent, with the same batch id, by the next Sync.
type RetryError struct {
	Route    string
	Attempts int
	Last     error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("client: gave up on %s after %d attempts (last: %v); unsent changes stay on the device for the next Sync", e.Route, e.Attempts, e.Last)
}

// Unwrap returns ErrGaveUp and the last failure.
func (e *RetryError) Unwrap() []error { return []error{ErrGaveUp, e.Last} }

// StatusError is an error answer that retrying would not fix (a 4xx other
// than 429): the HTTP status and the server's error. syncproto.ErrorCode
// reads its code.
type StatusError struct {
	Route  string
	Status int
	Err    *sp.Error
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("client: %s: server answered %d %s", e.Route, e.Status, e.Err)
}

// Unwrap returns the server's *syncproto.Error.
func (e *StatusError) Unwrap() error { return e.Err }

// request is one API call: method, path with query, and an uncompressed
// body (nil for none).
type request struct {
	method string
	route  string // the path without query, for logs and errors
	path   string
	body   []byte
}

// do sends a request, retrying 429s, 5xx answers and network errors with
// exponential backoff and full jitter (or the server's Retry-After), and
// returns the inflated body of a 2xx answer. It returns a *StatusError for
// other answers, a *RetryError after MaxRetries retries, and ctx.Err()
// when ctx ends first.
func (c *Client) do(ctx context.Context, r request) ([]byte, error) {
	if c.opt.ServerURL == "" {
		return nil, fmt.Errorf("%w: no ServerURL: this client works offline only", ErrBadOptions)
	}
	body, err := c.compress(r.body)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		status, out, retryAfter, err := c.once(ctx, r, body)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if err == nil && status/100 == 2 {
			return out, nil
		}
		retryable := err != nil || status == http.StatusTooManyRequests || status >= 500
		if err == nil {
			err = &StatusError{Route: r.route, Status: status, Err: errorOf(status, out)}
		}
		if !retryable {
			return nil, err
		}
		if attempt >= c.opt.MaxRetries {
			c.log.Warn("giving up", slog.String(keyRoute, r.route), slog.Int(keyAttempt, attempt+1), slog.String(keyError, err.Error()))
			return nil, &RetryError{Route: r.route, Attempts: attempt + 1, Last: err}
		}
		wait := retryAfter
		if wait < 0 {
			wait = c.backoff(attempt)
		}
		c.log.Warn("retrying", slog.String(keyRoute, r.route), slog.Int(keyAttempt, attempt+1), slog.Int(keyStatus, status),
			slog.Duration(keyWait, wait), slog.String(keyError, err.Error()))
		if !c.sleep(ctx.Done(), wait) {
			return nil, ctx.Err()
		}
	}
}

// once sends one attempt. It returns the status, the inflated body, the
// server's Retry-After (negative when absent) and a transport error.
func (c *Client) once(ctx context.Context, r request, body []byte) (int, []byte, time.Duration, error) {
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.opt.ServerURL+r.path, rd)
	if err != nil {
		return 0, nil, -1, err
	}
	if r.body != nil {
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.Header.Set("Content-Type", "application/json")
		if c.opt.Encoding != EncodingNone {
			req.Header.Set("Content-Encoding", c.opt.Encoding)
		}
	}
	req.Header.Set("Authorization", "Bearer "+c.opt.Token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Encoding", "zstd, gzip")
	req.Header.Set(sp.HeaderDeviceTime, strconv.FormatInt(c.now().UnixMilli(), 10))
	if c.opt.AppVersion != "" {
		req.Header.Set(sp.HeaderAppVersion, c.opt.AppVersion)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, -1, err
	}
	defer resp.Body.Close()
	out, err := inflate(resp)
	if err != nil {
		return 0, nil, -1, fmt.Errorf("reading the %d answer: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, out, c.retryAfter(resp.Header.Get("Retry-After")), nil
}

// compress encodes a request body per Options.Encoding.
func (c *Client) compress(b []byte) ([]byte, error) {
	if b == nil || c.opt.Encoding == EncodingNone {
		return b, nil
	}
	var buf bytes.Buffer
	switch c.opt.Encoding {
	case EncodingGzip:
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(b); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case EncodingZstd:
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(b); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// inflate reads an answer's body, decoding its Content-Encoding.
func inflate(resp *http.Response) ([]byte, error) {
	var r io.Reader = resp.Body
	switch enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(resp.Body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxResponseBytes))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBytes {
		return nil, fmt.Errorf("answer over %d bytes", maxResponseBytes)
	}
	return b, nil
}

// errorOf reads an error answer's body; a body that is not the protocol's
// error shape gets a code from its status.
func errorOf(status int, body []byte) *sp.Error {
	var eb sp.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		return eb.Error
	}
	code := sp.CodeInternal
	switch status {
	case http.StatusBadRequest:
		code = sp.CodeBadRequest
	case http.StatusUnauthorized:
		code = sp.CodeUnauthorized
	case http.StatusForbidden:
		code = sp.CodeForbidden
	case http.StatusNotFound:
		code = sp.CodeNotFound
	case http.StatusGone:
		code = sp.CodeResyncRequired
	case http.StatusRequestEntityTooLarge:
		code = sp.CodeTooLarge
	case http.StatusUnsupportedMediaType:
		code = sp.CodeUnsupportedEncoding
	case http.StatusTooManyRequests:
		code = sp.CodeRateLimited
	case http.StatusServiceUnavailable:
		code = sp.CodeUnavailable
	}
	return sp.Errorf(code, "HTTP %d %s", status, http.StatusText(status))
}

// backoff is the wait before retry attempt+1: full jitter, a uniform
// random duration up to BackoffBase·2^attempt, capped at MaxBackoff.
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.opt.MaxBackoff
	if attempt < 32 {
		if d := c.opt.BackoffBase << attempt; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return rand.N(ceiling + 1)
}

// retryAfter reads a Retry-After header: delay-seconds (a decimal fraction
// is accepted too) or an HTTP date. It returns -1 when absent or unreadable.
func (c *Client) retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return -1
	}
	if s, err := strconv.ParseFloat(h, 64); err == nil {
		if s < 0 || s > 24*3600 {
			return -1
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(h); err == nil {
		d := t.Sub(c.now())
		if d < 0 {
			d = 0
		}
		return d
	}
	return -1
}
