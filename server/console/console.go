// Package console is the supervisors' console: a plain HTML, CSS and
// JavaScript page built into the server. It speaks only the public API
// (PROTOCOL.md §4–§6 and the extensions in docs/protocol-notes.md) with the
// bearer token the user types in; the server side is nothing but these
// static files.
//
// index.html is served at "/" (and "/console/"), the other files under
// "/console/". Every answer carries a strict Content-Security-Policy (no
// inline script or style, nothing from another origin) and Cache-Control:
// no-cache with a strong ETag, so a browser revalidates each file and gets
// a 304 while it has not changed.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is sent with every file of the console.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Prefix is where the console's assets live.
const Prefix = "/console/"

type file struct {
	name  string
	body  []byte
	etag  string
	ctype string
}

var (
	loadOnce sync.Once
	files    map[string]*file
)

func load() {
	files = map[string]*file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(p, "static/")
		files[name] = &file{name: name, body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: contentType(name)}
		return nil
	})
	if err != nil {
		panic("console: reading the embedded files: " + err.Error()) // only if the binary is broken
	}
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json":
		return "application/json; charset=utf-8"
	}
	return "application/octet-stream"
}

// Handler serves the console: index.html at "/" and "/console/", the
// assets at "/console/NAME". Anything else is a 404 in the API's error
// shape. Only GET and HEAD are answered.
func Handler() http.Handler {
	loadOnce.Do(load)
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "not_found", "the console answers GET only")
		return
	}
	var name string
	switch p := r.URL.Path; {
	case p == "/" || p == Prefix || p == Prefix+"index.html":
		name = "index.html"
	case strings.HasPrefix(p, Prefix):
		name = strings.TrimPrefix(p, Prefix)
	}
	f := files[name]
	if f == nil {
		writeError(w, http.StatusNotFound, "not_found", "no such file in the console")
		return
	}
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	// ServeContent answers If-None-Match with 304 and HEAD without a body.
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":{"code":"` + code + `","message":"` + msg + `"}}`))
}
