package server

import (
	"errors"
	"io"
	"net/http"
	"strings"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/gin-gonic/gin"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var (
	errTooLarge    = sp.Errorf(sp.CodeTooLarge, "request body over %d bytes (after decompression)", sp.MaxBodyBytes)
	errBadEncoding = sp.Errorf(sp.CodeBadJSON, "request body does not decompress as its Content-Encoding says")
)

// readBody reads a request body, inflating gzip or zstd, and cuts it off as
// soon as it passes max bytes (compressed or inflated): a decompression bomb
// costs at most max bytes of memory. It returns an *sp.Error with
// CodeUnsupportedEncoding for another Content-Encoding, CodeTooLarge past
// max, and CodeBadJSON for a body that does not inflate.
func readBody(c *gin.Context, max int64) ([]byte, error) {
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
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, inflateError(err)
	}
	if int64(len(b)) > max {
		return nil, errTooLarge
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
	var se interface{ Timeout() bool }
	if errors.As(err, &se) {
		return err
	}
	return errBadEncoding
}

func cutHeader(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}
