package server

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Pull pages are compressed before they are written, not while (as the
// compression middleware does for other answers), so that one compressed
// page can be given to every caller of the same scopes who asks for it
// (records.PullEncoded). The settings are the middleware's.

// minCompressed is the smallest page worth compressing (the middleware's
// minimum too).
const minCompressed = 1024

// pullCoding returns the content coding a pull answer takes for an
// Accept-Encoding header: zstd if accepted at least as much as gzip, then
// gzip, as the middleware chooses; "" for neither, or for a header this
// does not read (a wildcard, a malformed q), which the middleware answers.
func pullCoding(accept string) string {
	zstdQ, gzipQ := -1.0, -1.0
	for _, part := range strings.Split(accept, ",") {
		coding, params, _ := strings.Cut(part, ";")
		q := 1.0
		if params = strings.TrimSpace(params); params != "" {
			v, ok := strings.CutPrefix(params, "q=")
			f, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil || f < 0 || f > 1 {
				return ""
			}
			q = f
		}
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "zstd":
			zstdQ = q
		case "gzip":
			gzipQ = q
		case "*":
			return ""
		}
	}
	switch {
	case zstdQ > 0 && zstdQ >= gzipQ:
		return "zstd"
	case gzipQ > 0:
		return "gzip"
	}
	return ""
}

var (
	zstdEncoders = sync.Pool{New: func() any {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(128<<10))
		if err != nil {
			panic(err) // only for invalid static options
		}
		return e
	}}
	gzipWriters = sync.Pool{New: func() any {
		w, err := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		if err != nil {
			panic(err) // only for an invalid static level
		}
		return w
	}}
)

// compressor is a zstd encoder or a gzip writer, reused with Reset.
type compressor interface {
	io.WriteCloser
	Reset(io.Writer)
}

// encodePage writes a pull page compressed with coding ("zstd" or
// "gzip"), or as it is when it is smaller than minCompressed.
func encodePage(coding string) func(*records.PullPage) (records.EncodedPage, error) {
	return func(p *records.PullPage) (records.EncodedPage, error) {
		var b bytes.Buffer
		if p.Size() < minCompressed {
			b.Grow(p.Size())
			_, err := p.WriteTo(&b)
			return records.EncodedPage{Body: b.Bytes()}, err
		}
		b.Grow(p.Size() / 6)
		var pool *sync.Pool
		switch coding {
		case "zstd":
			pool = &zstdEncoders
		case "gzip":
			pool = &gzipWriters
		default:
			panic("server: encodePage: no coding " + coding)
		}
		w := pool.Get().(compressor)
		defer pool.Put(w)
		w.Reset(&b)
		if _, err := p.WriteTo(w); err != nil {
			return records.EncodedPage{}, err
		}
		if err := w.Close(); err != nil {
			return records.EncodedPage{}, err
		}
		return records.EncodedPage{Body: b.Bytes(), Coding: coding}, nil
	}
}
