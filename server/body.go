package server

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/gin-gonic/gin"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var (
	errTooLarge    = sp.Errorf(sp.CodeTooLarge, "request body over %d bytes (after decompression)", sp.MaxBodyBytes)
	errBadEncoding = sp.Errorf(sp.CodeBadJSON, "request body does not decompress as its Content-Encoding says")
	errSlowBody    = sp.Errorf(sp.CodeBadRequest, "the request body did not arrive within the server's read timeout")
)

// readBody reads a request body, inflating gzip or zstd, and cuts it off as
// soon as it passes max bytes (compressed or inflated): a decompression bomb
// costs at most max bytes of memory. It returns an *sp.Error with
// CodeUnsupportedEncoding for another Content-Encoding, CodeTooLarge past
// max, and CodeBadJSON for a body that does not inflate.
//
// budget, if not nil, must grant a large-body slot before the body grows
// past its first chunk; the caller releases it when done with the body.
func readBody(c *gin.Context, max int64, budget *bodyBudget) ([]byte, error) {
	raw := http.MaxBytesReader(c.Writer, c.Request.Body, max)
	var r io.Reader = raw
	switch enc := strings.ToLower(strings.TrimSpace(c.GetHeader("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, inflateError(err)
		}
		defer zr.Close()
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(raw, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(uint64(max)+1), zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	default:
		return nil, sp.Errorf(sp.CodeUnsupportedEncoding, "Content-Encoding %q: use gzip, zstd or none", cutHeader(enc))
	}
	b, err := readChunked(r, max, budget)
	if err == errTooLarge || err == errBusy {
		return nil, err
	}
	if err != nil {
		return nil, inflateError(err)
	}
	return b, nil
}

func inflateError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errTooLarge
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return errTooLarge
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.Is(err, zstd.ErrMagicMismatch):
		return errBadEncoding
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return errSlowBody
	}
	return errBadEncoding
}

func cutHeader(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

// chunkSize is the unit in which bodies are read.
const chunkSize = 1 << 20

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// readChunked reads r to the end in pooled 1 MiB chunks, then copies them
// into one slice of the exact size. Unlike io.ReadAll, it never holds a
// buffer twice the body's size, nor leaves the garbage of each doubling:
// a 32 MiB body (or a bomb cut off at 32 MiB) costs 32 MiB of chunks, which
// go back to the pool, and the body itself.
//
// It returns errTooLarge as soon as more than max bytes come.
func readChunked(r io.Reader, max int64, budget *bodyBudget) ([]byte, error) {
	r = io.LimitReader(r, max+1)
	var chunks []*[]byte
	defer func() {
		for _, c := range chunks {
			chunkPool.Put(c)
		}
	}()
	total, last := 0, 0
	for {
		if len(chunks) == 1 {
			if err := budget.grow(); err != nil {
				return nil, err
			}
		}
		c := chunkPool.Get().(*[]byte)
		chunks = append(chunks, c)
		n, err := io.ReadFull(r, *c)
		total, last = total+n, n
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(total) > max {
		return nil, errTooLarge
	}
	out := make([]byte, 0, total)
	for i, c := range chunks {
		if i == len(chunks)-1 {
			out = append(out, (*c)[:last]...)
		} else {
			out = append(out, *c...)
		}
	}
	return out, nil
}
