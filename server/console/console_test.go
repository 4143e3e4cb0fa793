package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/fleet"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/server/console"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// chromiumPath is where the browser test expects Chromium (Debian's
// package). Without it the test is skipped, unless CI=true: then it fails.
const chromiumPath = "/usr/bin/chromium"

// The screenshots go to $FIELDSYNC_CONSOLE_SHOTS when set, else to a
// temporary directory that the test removes.
const shotsEnv = "FIELDSYNC_CONSOLE_SHOTS"

// ---------------------------------------------------------------------------
// The static handler, without a browser.

func TestHandlerHeaders(t *testing.T) {
	ts := httptest.NewServer(console.Handler())
	defer ts.Close()
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="/console/app.js" defer></script>`},
		{"/console/", "text/html; charset=utf-8", "<main"},
		{"/console/app.js", "text/javascript; charset=utf-8", "'use strict'"},
		{"/console/app.css", "text/css; charset=utf-8", ":root"},
		{"/console/i18n.js", "text/javascript; charset=utf-8", "FIELDSYNC_I18N"},
		{"/console/favicon.svg", "image/svg+xml", "<svg"},
	} {
		res, err := http.Get(ts.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d", tc.path, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", tc.path, cc)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.path)
		}
		if !bytes.Contains(body, []byte(tc.contains)) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		// A revalidation with the ETag is a 304.
		req, _ := http.NewRequest("GET", ts.URL+tc.path, nil)
		req.Header.Set("If-None-Match", res.Header.Get("ETag"))
		res2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res2.Body.Close()
		if res2.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: %d, want 304", tc.path, res2.StatusCode)
		}
	}
	// No inline script or style in the page: the CSP would block them.
	res, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, bad := range []string{"<script>", "style=", " onclick=", "<style", "http://", "https://"} {
		if bytes.Contains(page, []byte(bad)) {
			t.Errorf("index.html holds %q", bad)
		}
	}
	for _, p := range []string{"/console/nope.js", "/console/../console.go", "/console/static/app.js", "/index.html"} {
		res, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
	res, err = http.Post(ts.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", res.StatusCode)
	}
}

// ---------------------------------------------------------------------------
// The real server and its HTTP API, as a tablet speaks it.

type env struct {
	t      *testing.T
	url    string
	client *http.Client
}

type account struct {
	id, token, name string
	// A tablet's app version and how far its clock is ahead of the
	// server's: sent on each of its pushes and pulls, as the app does.
	version string
	ahead   time.Duration
}

// deviceHeaders are the headers a tablet's app sends with each sync.
func (a account) deviceHeaders() map[string]string {
	h := map[string]string{sp.HeaderDeviceTime: fmt.Sprint(time.Now().Add(a.ahead).UnixMilli())}
	if a.version != "" {
		h[sp.HeaderAppVersion] = a.version
	}
	return h
}

func startServer(t *testing.T) (*env, map[string]account) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "data"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx := context.Background()
	accounts := auth.NewService(st, nil)
	made := map[string]account{}
	for _, a := range []struct {
		key, name string
		role      auth.Role
		scopes    []string
		version   string
		ahead     time.Duration
	}{
		{"tabletA", "Tablette Aït Baha", auth.RoleDevice, []string{"guelmim-oued-noun"}, "2.4.1", 0},
		// Tablet B's clock is five minutes ahead: the fleet view flags it.
		{"tabletB", "Tablette Tata", auth.RoleDevice, []string{"guelmim-oued-noun"}, "2.4.1", 5 * time.Minute},
		{"tabletC", "Tablette Akka", auth.RoleDevice, []string{"guelmim-oued-noun"}, "2.3.0", 0},
		// Tablet D last synced five days ago (figures saved below), tablet F
		// never synced; tablet E is in a zone the supervisor lacks.
		{"tabletD", "Tablette Tiznit", auth.RoleDevice, []string{"guelmim-oued-noun", "souss-massa"}, "", 0},
		{"tabletE", "Tablette Errachidia", auth.RoleDevice, []string{"draa-tafilalet"}, "", 0},
		{"tabletF", "Tablette Tan-Tan", auth.RoleDevice, []string{"guelmim-oued-noun"}, "", 0},
		{"supervisor", "Fatima Zahra Amrani", auth.RoleSupervisor, []string{"guelmim-oued-noun"}, "", 0},
		{"admin", "Admin siège", auth.RoleAdmin, nil, "", 0},
		{"hq", "Siège Rabat", auth.RoleHQ, nil, "", 0},
	} {
		acc, token, err := accounts.Create(ctx, a.role, a.name, a.scopes)
		if err != nil {
			t.Fatal(err)
		}
		made[a.key] = account{id: acc.ID, token: token, name: a.name, version: a.version, ahead: a.ahead}
	}
	// What the server saw of tablet D before this run: the tracker loads it.
	now := time.Now()
	if err := st.SaveFleet(ctx, map[string]fleet.Stats{made["tabletD"].id: {
		LastPush: now.Add(-5*24*time.Hour - time.Hour), LastPull: now.Add(-6 * 24 * time.Hour),
		AppVersion: "2.2.0", SkewMs: -40_000, SkewKnown: true, RecordsPushed: 12,
	}}); err != nil {
		t.Fatal(err)
	}
	tracker, err := fleet.NewTracker(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	api := server.New(server.Options{Records: records.NewService(st, records.Options{}), Auth: accounts, Fleet: tracker})
	ts := httptest.NewServer(api.Handler())
	t.Cleanup(ts.Close)
	return &env{t: t, url: ts.URL, client: ts.Client()}, made
}

// call makes one API call and decodes the JSON answer into out (when not
// nil); it returns the status.
func (e *env) call(method, path, token string, body, out any) int {
	e.t.Helper()
	return e.callWith(method, path, token, nil, body, out)
}

// callWith is call with extra request headers.
func (e *env) callWith(method, path, token string, headers map[string]string, body, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return res.StatusCode
}

type write struct {
	By     string         `json:"by"`
	N      int            `json:"n"`
	At     int64          `json:"at"`
	Fields map[string]any `json:"fields"`
	Ctx    map[string]int `json:"ctx,omitempty"`
}

type item struct {
	ID     string         `json:"id"`
	Form   string         `json:"form"`
	Scope  string         `json:"scope"`
	Clock  map[string]int `json:"clock"`
	Writes []write        `json:"writes"`
}

// push sends one item as the device and wants the given status back.
func (e *env) push(dev account, it item, want string) {
	e.t.Helper()
	var res struct {
		Results []struct {
			Status string          `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"results"`
	}
	body := map[string]any{"device": dev.id, "batch": uuid.NewString(), "records": []item{it}}
	if st := e.callWith("POST", "/v1/sync/push", dev.token, dev.deviceHeaders(), body, &res); st != 200 {
		e.t.Fatalf("push: HTTP %d", st)
	}
	if len(res.Results) != 1 || res.Results[0].Status != want {
		e.t.Fatalf("push of %s: %+v, want %s", it.ID, res.Results, want)
	}
}

type pulled struct {
	Records []struct {
		ID     string  `json:"id"`
		Writes []write `json:"writes"`
	} `json:"records"`
	Cursor string `json:"cursor"`
	More   bool   `json:"more"`
}

// pullAll pulls as the device from since to the end; it returns the
// records' states and the last cursor.
func (e *env) pullAll(dev account, since string) (map[string][]write, string) {
	e.t.Helper()
	out := map[string][]write{}
	for {
		var p pulled
		if st := e.callWith("GET", "/v1/sync/pull?since="+url.QueryEscape(since)+"&limit=1000", dev.token, dev.deviceHeaders(), nil, &p); st != 200 {
			e.t.Fatalf("pull: HTTP %d", st)
		}
		for _, r := range p.Records {
			out[r.ID] = r.Writes
		}
		since = p.Cursor
		if !p.More {
			return out, since
		}
	}
}

type recordView struct {
	Record struct {
		Clock map[string]int `json:"clock"`
	} `json:"record"`
	Values       map[string]any `json:"values"`
	Deleted      bool           `json:"deleted"`
	ConflictKind string         `json:"conflict_kind"`
	Review       *struct {
		State, Note, By string
	} `json:"review"`
}

func (e *env) view(tok, id string) recordView {
	e.t.Helper()
	var v recordView
	if st := e.call("GET", "/v1/records/"+id, tok, nil, &v); st != 200 {
		e.t.Fatalf("GET record %s: HTTP %d", id, st)
	}
	return v
}

// ---------------------------------------------------------------------------
// What the browser must not do: console output, exceptions, failed loads,
// and HTTP errors that the step did not expect.

type watcher struct {
	mu       sync.Mutex
	reqs     map[network.RequestID]string // request id -> "METHOD path"
	allowed  map[string]int               // "STATUS METHOD path" -> how many more (-1: any)
	seen     map[string]int
	problems []string
}

func newWatcher() *watcher {
	return &watcher{reqs: map[network.RequestID]string{}, allowed: map[string]int{}, seen: map[string]int{}}
}

// expect allows an HTTP error answer: n times, or any number when n < 0.
func (w *watcher) expect(status int, method, path string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.allowed[fmt.Sprintf("%d %s %s", status, method, path)] = n
}

func (w *watcher) seenCount(status int, method, path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[fmt.Sprintf("%d %s %s", status, method, path)]
}

func (w *watcher) problem(format string, args ...any) {
	w.problems = append(w.problems, fmt.Sprintf(format, args...))
}

// listen runs in chromedp's reading loop: it only records.
func (w *watcher) listen(ev any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		// The console writes nothing to the console, ever: any call is a
		// failure (and could be a leaked token or value).
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, string(a.Value)+a.Description)
		}
		w.problem("console.%s(%s)", ev.Type, strings.Join(parts, ", "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		w.problem("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg)
	case *log.EventEntryAdded:
		// Network errors are judged by their status below; everything else
		// the browser reports at warning or error (a CSP violation, a
		// deprecation) is a failure.
		en := ev.Entry
		if en.Source != log.EntrySourceNetwork && (en.Level == log.EntryLevelError || en.Level == log.EntryLevelWarning) {
			w.problem("browser log (%s, %s): %s %s", en.Source, en.Level, en.Text, en.URL)
		}
	case *network.EventRequestWillBeSent:
		u, err := url.Parse(ev.Request.URL)
		path := ev.Request.URL
		if err == nil {
			path = u.Path
		}
		w.reqs[ev.RequestID] = ev.Request.Method + " " + path
	case *network.EventResponseReceived:
		if ev.Response.Status < 400 {
			return
		}
		key := fmt.Sprintf("%d %s", ev.Response.Status, w.reqs[ev.RequestID])
		w.seen[key]++
		switch n, ok := w.allowed[key]; {
		case ok && n < 0:
		case ok && n > 0:
			w.allowed[key] = n - 1
		default:
			w.problem("unexpected HTTP %s", key)
		}
	case *network.EventLoadingFailed:
		w.problem("loading failed: %s %s (%s, canceled %v)", w.reqs[ev.RequestID], ev.Type, ev.ErrorText, ev.Canceled)
	}
}

func (w *watcher) check(t *testing.T, step string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.problems) > 0 {
		t.Fatalf("%s: the browser reported:\n  %s", step, strings.Join(w.problems, "\n  "))
	}
}

// ---------------------------------------------------------------------------
// The browser test.

func TestConsoleInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but Chromium is missing at %s: install it (apt-get install -y chromium)", chromiumPath)
		}
		t.Skipf("no Chromium at %s; set CI=true to make this a failure", chromiumPath)
	}
	started := time.Now()
	shots := os.Getenv(shotsEnv)
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	downloads := t.TempDir()
	profile := t.TempDir()

	e, acc := startServer(t)
	tabA, tabB, sup, admin := acc["tabletA"], acc["tabletB"], acc["supervisor"], acc["admin"]

	// Two records with real conflicts, made through the API as tablets do.
	base := time.Now().Add(-3 * time.Hour).UnixMilli()
	r1, r2, r3 := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	const form, scope = "assessment", "guelmim-oued-noun"
	A, B := tabA.id, tabB.id
	// r1: created on tablet A, then both tablets change the income and the
	// water source without seeing each other.
	e.push(tabA, item{ID: r1, Form: form, Scope: scope, Clock: map[string]int{A: 1}, Writes: []write{
		{By: A, N: 1, At: base, Fields: map[string]any{"head_name": "فاطمة أيت علي", "household_size": 5, "monthly_income_mad": 1000, "water_source": "بئر", "douar": "Aït Baha"}},
	}}, "applied")
	e.push(tabA, item{ID: r1, Form: form, Scope: scope, Clock: map[string]int{A: 2}, Writes: []write{
		{By: A, N: 2, At: base + 3_600_000, Fields: map[string]any{"monthly_income_mad": 1200, "water_source": "صهريج"}},
	}}, "applied")
	e.push(tabB, item{ID: r1, Form: form, Scope: scope, Clock: map[string]int{A: 1, B: 1}, Writes: []write{
		{By: B, N: 1, At: base + 3_000_000, Fields: map[string]any{"monthly_income_mad": 1500, "water_source": "الشبكة العمومية"}},
	}}, "conflict")
	// r2: deleted on tablet A while tablet B edited it.
	e.push(tabA, item{ID: r2, Form: form, Scope: scope, Clock: map[string]int{A: 1}, Writes: []write{
		{By: A, N: 1, At: base + 60_000, Fields: map[string]any{"head_name": "Mohamed Oubella", "household_size": 3}},
	}}, "applied")
	e.push(tabA, item{ID: r2, Form: form, Scope: scope, Clock: map[string]int{A: 2}, Writes: []write{
		{By: A, N: 2, At: base + 4_000_000, Ctx: map[string]int{A: 1}, Fields: map[string]any{"_deleted": true}},
	}}, "applied")
	e.push(tabB, item{ID: r2, Form: form, Scope: scope, Clock: map[string]int{A: 1, B: 1}, Writes: []write{
		{By: B, N: 1, At: base + 3_900_000, Fields: map[string]any{"household_size": 4}},
	}}, "conflict")
	// r3: a conflict on the number of rooms, then tablet B, which had pulled
	// both values, deleted the record: a deleted record holding a conflict
	// (resolving it would restore it unless the supervisor keeps it deleted).
	e.push(tabA, item{ID: r3, Form: form, Scope: scope, Clock: map[string]int{A: 1}, Writes: []write{
		{By: A, N: 1, At: base + 120_000, Fields: map[string]any{"head_name": "Aicha Bouzid", "rooms": 2}},
	}}, "applied")
	e.push(tabB, item{ID: r3, Form: form, Scope: scope, Clock: map[string]int{B: 1}, Writes: []write{
		{By: B, N: 1, At: base + 130_000, Fields: map[string]any{"rooms": 3}},
	}}, "conflict")
	e.push(tabB, item{ID: r3, Form: form, Scope: scope, Clock: map[string]int{A: 1, B: 2}, Writes: []write{
		{By: B, N: 2, At: base + 140_000, Ctx: map[string]int{A: 1, B: 1}, Fields: map[string]any{"_deleted": true}},
	}}, "conflict")

	// The browser.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("lang", "en-US"),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	w := newWatcher()
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatal(err)
	}
	if err := chromedp.Listen(bctx, w.listen); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.CallBrowser(bctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
	}); err != nil {
		t.Fatal(err)
	}

	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(bctx, 20*time.Second)
		defer scancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v (page: %s)", step, err, pageText(bctx))
		}
		w.check(t, step)
	}
	// until waits for a JavaScript expression to be truthy.
	until := func(step, expr string) {
		t.Helper()
		do(step, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second))(ctx, tg)
			return chromedp.Void{}, err
		})
	}
	eval := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return s
	}
	var shotList []string
	shot := func(name string) {
		t.Helper()
		// From the top of the page, once layout and fonts have settled.
		do("settle "+name, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0); document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))`, chromedp.EvalAwaitPromise))
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(shots, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		shotList = append(shotList, p)
	}
	desktop := chromedp.EmulateViewport(1280, 800)
	tablet := chromedp.EmulateViewport(800, 1280, chromedp.EmulateScale(1))

	// A supervisor's session meets no HTTP error but the stale resolution
	// of step 4: logging in is one GET /v1/whoami.

	// 1. The login page, in English (the browser's language).
	do("open", desktop, chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	if got := eval(`document.documentElement.lang + "/" + document.documentElement.dir`); got != "en/ltr" {
		t.Fatalf("language of a fresh page: %s, want en/ltr", got)
	}
	shot("01-login-1280x800")

	// 2. Log in as the supervisor, from the keyboard (Enter submits).
	do("log in", chromedp.SendKeys(chromedp.ID("token"), sup.token+"\r"))
	until("queue shown", `document.querySelectorAll('#queue-table tbody tr').length === 3`)
	// whoami names the supervisor, her role and her zone at once.
	if got := eval(`document.querySelector('#who').textContent`); !strings.Contains(got, sup.name) || !strings.Contains(got, "supervisor") || !strings.Contains(got, scope) {
		t.Fatalf("who is logged in: %q, want %q, supervisor and %s", got, sup.name, scope)
	}
	// The zone filter is a menu of her zones.
	if got := eval(`document.querySelector('#q-scope').tagName + ' ' + [...document.querySelectorAll('#q-scope option')].map((o) => o.value).join(',')`); got != "SELECT ,"+scope {
		t.Fatalf("zone filter: %q, want a menu of all and %s", got, scope)
	}
	if got := eval(`location.href`); strings.Contains(got, sup.token) {
		t.Fatal("the token is in the URL")
	}
	if got := eval(`sessionStorage.getItem('fieldsync.console.token') === ` + jsString(sup.token) + ` ? 'kept' : 'lost'`); got != "kept" {
		t.Fatalf("token in sessionStorage: %s", got)
	}
	if got := eval(`[...document.querySelectorAll('#queue-table tbody tr')].map((r) => r.dataset.record).join(' ')`); got != r1+" "+r2+" "+r3 {
		t.Fatalf("queue order: %s, want oldest first %s %s %s", got, r1, r2, r3)
	}
	if got := eval(`document.querySelector('#queue-count').textContent`); !strings.Contains(got, "3") {
		t.Fatalf("queue count: %q", got)
	}
	shot("02-queue-1280x800")
	do("tablet size", tablet)
	shot("03-queue-800x1280")
	do("desktop size", desktop)

	// 3. Open the first conflict: the siblings side by side, by name.
	do("open r1", chromedp.Click(chromedp.CSS(`#queue-table tr[data-record="`+r1+`"] a`)))
	until("conflict view", `!!document.querySelector('#fs-monthly_income_mad') && !!document.querySelector('#fs-water_source')`)
	for _, want := range []string{"Tablette Aït Baha", "Tablette Tata", "1200", "1500", "صهريج", "الشبكة العمومية"} {
		if got := eval(`document.querySelector('#resolve-form').textContent`); !strings.Contains(got, want) {
			t.Fatalf("conflict view lacks %q", want)
		}
	}
	if got := eval(`document.querySelector('#fs-water_source .sib-value').getAttribute('dir')`); got != "auto" {
		t.Fatalf("an Arabic value without dir=auto: %q", got)
	}
	shot("04-conflict-1280x800")
	do("tablet size", tablet)
	shot("05-conflict-800x1280")
	// The same view in Arabic, redrawn without a reload, then back.
	do("arabic conflict", setLang("ar"))
	until("arabic conflict drawn", `document.documentElement.dir === 'rtl' && document.querySelector('#conflict-title').textContent.startsWith('تعارض')`)
	shot("05b-conflict-ar-800x1280")
	do("english again", setLang("en"), desktop)

	// 4. Meanwhile a third tablet, which had pulled r1, syncs another
	// change: the supervisor's view is stale, and the server must say so
	// (409 stale_resolution).
	C := acc["tabletC"].id
	e.push(acc["tabletC"], item{ID: r1, Form: form, Scope: scope, Clock: map[string]int{A: 2, B: 1, C: 1}, Writes: []write{
		{By: C, N: 1, At: base + 5_000_000, Fields: map[string]any{"phone": "0661234567"}},
	}}, "conflict")
	w.expect(409, "POST", "/v1/conflicts/"+r1+"/resolve", 1)
	pick1500 := `//fieldset[@id="fs-monthly_income_mad"]//label[.//span[contains(@class,"sib-value") and text()="1500"]]`
	do("pick values",
		chromedp.Click(pick1500),
		chromedp.Click(chromedp.ID("custom-water_source")),
		chromedp.SendKeys(chromedp.ID("custom-water_source"), "بئر وصهريج"),
		chromedp.SendKeys(chromedp.ID("resolve-note"), "Vérifié par téléphone avec l'enquêtrice."),
		chromedp.Click(chromedp.ID("resolve-submit")))
	until("stale explained", `!!document.querySelector('#stale') && document.querySelector('#stale').textContent.includes('stale_resolution')`)
	if got := eval(`String(document.querySelectorAll('#resolve-form input[type=radio]:checked').length)`); got != "0" {
		t.Fatalf("after a stale resolution the old picks stay checked: %s", got)
	}
	shot("06-stale-1280x800")

	// 5. Pick again and resolve: the conflict leaves the queue.
	do("pick again",
		chromedp.Click(pick1500),
		chromedp.Click(chromedp.CSS(`#fs-water_source .other-pick input`)),
		chromedp.Click(chromedp.ID("resolve-submit")))
	until("resolved", `location.hash === '#/conflicts' && !!document.querySelector('#flash') && document.querySelectorAll('#queue-table tbody tr').length === 2`)
	if got := eval(`String(!!document.querySelector('#queue-table tr[data-record="` + r1 + `"]'))`); got != "false" {
		t.Fatal("the resolved conflict is still in the queue")
	}
	v1 := e.view(sup.token, r1)
	if v1.ConflictKind != "" || v1.Values["monthly_income_mad"] != float64(1500) || v1.Values["water_source"] != "بئر وصهريج" || v1.Values["phone"] != "0661234567" {
		t.Fatalf("r1 after the resolution: %+v", v1)
	}

	// 6. The delete_edit conflict, explained in words: restore the record.
	do("open r2", chromedp.Click(chromedp.CSS(`#queue-table tr[data-record="`+r2+`"] a`)))
	until("delete_edit view", `!!document.querySelector('#fs-_deleted')`)
	if got := eval(`document.querySelector('#fs-_deleted').textContent`); !strings.Contains(got, "deleted by") || !strings.Contains(got, "Tablette Aït Baha") || !strings.Contains(got, "Tablette Tata") {
		t.Fatalf("delete_edit explanation: %q", got)
	}
	shot("07-delete-edit-1280x800")
	do("restore", chromedp.Click(chromedp.CSS(`label[for="del-restore"]`)), chromedp.Click(chromedp.ID("resolve-submit")))
	until("r2 resolved", `location.hash === '#/conflicts' && !!document.querySelector('#flash') && document.querySelectorAll('#queue-table tbody tr').length === 1`)
	if v2 := e.view(sup.token, r2); v2.Deleted || v2.ConflictKind != "" || v2.Values["household_size"] != float64(4) {
		t.Fatalf("r2 after the restore: %+v", v2)
	}

	// 7. A deleted record holding a conflict: the console asks whether to
	// keep it deleted, and refuses to send before every choice is made.
	do("open r3", tablet, chromedp.Click(chromedp.CSS(`#queue-table tr[data-record="`+r3+`"] a`)))
	until("deleted conflict view", `!!document.querySelector('#fs-_deleted') && !!document.querySelector('#fs-rooms')`)
	do("resolve too early", chromedp.Click(chromedp.ID("resolve-submit")))
	until("asked to choose", `!!document.querySelector('#resolve-problem') && document.querySelector('#resolve-problem').textContent.includes('rooms') && document.activeElement.id === 'resolve-problem'`)
	shot("07b-deleted-conflict-800x1280-problem")
	do("keep deleted",
		chromedp.Click(`//fieldset[@id="fs-rooms"]//label[.//span[contains(@class,"sib-value") and text()="3"]]`),
		chromedp.Click(chromedp.CSS(`label[for="del-keep"]`)),
		chromedp.Click(chromedp.ID("resolve-submit")), desktop)
	until("queue empty", `location.hash === '#/conflicts' && !document.querySelector('#queue-table') && !!document.querySelector('#flash')`)
	if v3 := e.view(sup.token, r3); !v3.Deleted || v3.ConflictKind != "" || v3.Values["rooms"] != float64(3) {
		t.Fatalf("r3 after keeping it deleted: %+v", v3)
	}

	// 8. Review r1 with a comment; the tablet's next pull carries it.
	_, cursor := e.pullAll(tabA, "")
	const comment = "Revenu à confirmer avec le ménage — الدخل يحتاج تأكيداً"
	do("review list", chromedp.Click(chromedp.CSS(`#nav a[data-route="review"]`)))
	until("review table", `!!document.querySelector('#review-table tr[data-record="`+r1+`"]')`)
	do("open record", chromedp.Click(chromedp.CSS(`#review-table tr[data-record="`+r1+`"] a`)))
	until("record view", `!!document.querySelector('#history li') && !!document.querySelector('#values-table')`)
	if got := eval(`document.querySelector('#history').textContent`); !strings.Contains(got, "Conflict resolved") || !strings.Contains(got, "Vérifié par téléphone") {
		t.Fatalf("history lacks the resolution: %q", got)
	}
	// The history names its writers (actor_name, actor_role), not their ids.
	if got := eval(`document.querySelector('#history').textContent`); !strings.Contains(got, "Tablette Aït Baha · tablet") || !strings.Contains(got, "Tablette Tata · tablet") || !strings.Contains(got, "Tablette Akka · tablet") || strings.Contains(got, "account …") {
		t.Fatalf("history does not name the tablets: %q", got)
	}
	do("review", chromedp.SendKeys(chromedp.ID("review-comment"), comment), chromedp.Click(chromedp.ID("review-has_issues")))
	until("review saved", `!!document.querySelector('#review-note') && document.querySelector('#review-note').textContent === `+jsString(comment))
	// The history names the supervisor's resolution and review.
	for _, sel := range []string{"#history", "#who"} {
		if got := eval(`document.querySelector('` + sel + `').textContent`); !strings.Contains(got, sup.name) {
			t.Fatalf("%s does not name the supervisor: %q", sel, got)
		}
	}
	shot("08-record-1280x800")
	do("tablet size", tablet)
	shot("09-record-800x1280")
	do("desktop size", desktop)

	changed, _ := e.pullAll(tabA, cursor)
	found := false
	for _, wr := range changed[r1] {
		rv, ok := wr.Fields["_review"].(map[string]any)
		if !ok {
			continue
		}
		found = true
		if wr.By != sup.id || rv["state"] != "has_issues" || rv["note"] != comment || rv["by"] != sup.name {
			t.Fatalf("the pulled _review write: %+v", wr)
		}
	}
	if !found {
		t.Fatalf("tablet A's next pull has no _review write for r1: %+v", changed)
	}

	// 9. Arabic: the page turns right to left.
	do("arabic", setLang("ar"))
	if got := eval(`document.documentElement.lang + "/" + document.documentElement.dir + "/" + getComputedStyle(document.body).direction`); got != "ar/rtl/rtl" {
		t.Fatalf("Arabic page: %s, want ar/rtl/rtl", got)
	}
	if got := eval(`document.querySelector('#review-title').textContent`); got != "المراجعة" {
		t.Fatalf("Arabic heading: %q", got)
	}
	shot("10-record-ar-1280x800")
	do("tablet size", tablet)
	shot("11-record-ar-800x1280")
	do("queue in arabic", chromedp.Click(chromedp.CSS(`#nav a[data-route="review"]`)))
	until("review list ar", `!!document.querySelector('#review-table')`)
	shot("12-review-ar-800x1280")
	do("desktop size", desktop)

	// 10. The tablets (fleet) panel: the supervisor's zone's five tablets,
	// those that need attention first (F never synced, B's clock is five
	// minutes ahead, D last synced five days ago), then A and C; E is in
	// another zone.
	do("english for the fleet", setLang("en"), desktop)
	do("fleet", chromedp.Click(chromedp.CSS(`#nav a[data-route="fleet"]`)))
	until("fleet shown", `document.querySelectorAll('#fleet-table tbody tr').length > 0`)
	D, E, F := acc["tabletD"].id, acc["tabletE"].id, acc["tabletF"].id
	rowsJS := `[...document.querySelectorAll('#fleet-table tbody tr')]`
	if got, want := eval(rowsJS+`.map((r) => r.dataset.device + (r.classList.contains('flagged') ? '!' : '')).join(' ')`), F+"! "+B+"! "+D+"! "+A+" "+C; got != want {
		t.Fatalf("fleet rows (! = flagged): %s, want F! B! D! A C = %s (E %s hidden)", got, want, E)
	}
	row := func(id, sel string) string {
		t.Helper()
		return eval(`(document.querySelector('#fleet-table tr[data-device="` + id + `"] ` + sel + `') || {textContent: '(none)'}).textContent`)
	}
	for _, c := range []struct{ id, sel, want string }{
		{B, `[data-flag="clock_skew"]`, "clock 5 minutes ahead"},
		{B, `.skew`, "+5 mins"},
		{B, `.pull`, "never"},
		{D, `[data-flag="not_synced"]`, "not synced for 5 days"},
		{D, `[data-flag="clock_skew"]`, "(none)"}, // 40 s behind is within bounds
		{D, `.skew`, "-40 secs"},
		{D, `.push .rel`, "5 days ago"},
		{D, `.pull .rel`, "6 days ago"},
		{F, `[data-flag="not_synced"]`, "never synced"},
		{F, `.skew-cell`, "—"},
		{A, `[data-flag]`, "(none)"},
		{A, `.version`, "2.4.1"},
		{B, `.version`, "2.4.1"},
		{C, `.version`, "2.3.0"},
		{D, `.version`, "2.2.0"},
		{A, `.pushed`, "5"},
		{B, `.pushed`, "4"},
		{C, `.pushed`, "1"},
		{D, `.pushed`, "12"},
		{F, `.pushed`, "0"},
		{D, `.scopes`, "guelmim-oued-noun, souss-massa"},
	} {
		if got := row(c.id, c.sel); got != c.want {
			t.Fatalf("fleet: %s of tablet %s: %q, want %q", c.sel, c.id, got, c.want)
		}
	}
	if got := row(A, `.pull .rel`); got != "now" && !strings.HasSuffix(got, " ago") { // A pulled in step 8
		t.Fatalf("tablet A's last pull: %q", got)
	}
	if got := row(A, `.push .abs`); got == "(none)" || got == "" {
		t.Fatalf("tablet A's last push has no date: %q", got)
	}
	if got := eval(`document.querySelector('#fleet-count').textContent`); got != "Tablets: 5 · need attention: 3" {
		t.Fatalf("fleet summary: %q", got)
	}
	shot("14-fleet-1280x800")
	do("tablet size", tablet)
	shot("15-fleet-800x1280")
	do("arabic fleet", setLang("ar"))
	until("arabic fleet drawn", `document.documentElement.dir === 'rtl' && document.querySelector('#fleet-table [data-flag="clock_skew"]').textContent.includes('متقدمة')`)
	shot("16-fleet-ar-800x1280")
	do("desktop size", desktop)
	shot("17-fleet-ar-1280x800")
	do("french fleet", setLang("fr"), tablet)
	until("french fleet drawn", `document.querySelector('#fleet-table tr[data-device="`+F+`"] [data-flag="not_synced"]').textContent === 'jamais synchronisée'`)
	if got := row(D, `[data-flag="not_synced"]`); got != "pas synchronisée depuis 5\u00a0jours" {
		t.Fatalf("tablet D's flag in French: %q", got)
	}
	shot("18-fleet-fr-800x1280")
	do("desktop size", desktop)

	// 11. Log out: the token is gone from the tab.
	do("log out", chromedp.Click(chromedp.ID("logout")))
	until("login again", `!!document.querySelector('#token') && sessionStorage.length === 0 && location.hash === ''`)

	// 12. An admin exports: JSONL downloaded with the token in a header,
	// the snapshot's sequence shown.
	do("french", setLang("fr"))
	do("admin login", chromedp.SendKeys(chromedp.ID("token"), admin.token), chromedp.Click(chromedp.ID("login-submit")))
	until("admin in", `!!document.querySelector('#nav a[data-route="export"]') && !document.querySelector('#nav a[data-route="export"]').closest('li').hidden && document.querySelector('#who').textContent.includes('administrateur')`)
	do("export page", chromedp.Click(chromedp.CSS(`#nav a[data-route="export"]`)))
	until("export view", `!!document.querySelector('#export-jsonl')`)
	do("export", chromedp.Click(chromedp.ID("export-jsonl")))
	until("exported", `!!document.querySelector('#export-seq') && document.querySelector('#export-seq').textContent !== ''`)
	seq := eval(`document.querySelector('#export-seq').textContent`)
	req, _ := http.NewRequest("GET", e.url+"/v1/export?format=jsonl", nil)
	req.Header.Set("Authorization", "Bearer "+admin.token)
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if want := res.Header.Get("X-Snapshot-Seq"); seq != want {
		t.Fatalf("shown snapshot seq %q, the server's %q", seq, want)
	}
	shot("13-export-fr-1280x800")
	var file []byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		ents, _ := os.ReadDir(downloads)
		for _, en := range ents {
			if strings.HasSuffix(en.Name(), ".jsonl") {
				file, _ = os.ReadFile(filepath.Join(downloads, en.Name()))
			}
		}
		if len(file) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lines := bytes.Count(file, []byte("\n")); lines != 2 || !bytes.Contains(file, []byte(r1)) || !bytes.Contains(file, []byte(r2)) {
		t.Fatalf("downloaded export (%d lines): %s", lines, file)
	}

	// 13. HQ reads but never writes: no review buttons.
	// A tablet's token is valid (whoami answers) but the console refuses
	// it; a wrong token is whoami's only 401.
	w.expect(401, "GET", "/v1/whoami", 1)
	do("log out admin", chromedp.Click(chromedp.ID("logout")))
	until("login form", `!!document.querySelector('#token')`)
	do("tablet token", chromedp.SendKeys(chromedp.ID("token"), tabA.token+"\r"))
	until("tablet refused", `document.querySelector('#alert').textContent.includes('jeton de tablette') && !!document.querySelector('#token') && document.querySelector('#nav').hidden`)
	do("wrong token", chromedp.Evaluate[chromedp.Void](`document.querySelector('#token').value = ''`), chromedp.SendKeys(chromedp.ID("token"), "fst_not-a-token\r"))
	until("wrong token refused", `document.querySelector('#alert').textContent.includes('unauthorized') && document.querySelector('#nav').hidden`)
	do("hq login", chromedp.Evaluate[chromedp.Void](`document.querySelector('#token').value = ''`), chromedp.SendKeys(chromedp.ID("token"), acc["hq"].token+"\r"))
	until("hq in", `document.querySelector('#who').textContent.includes('siège')`)
	do("hq record", chromedp.Navigate(e.url+"/#/record/"+r1))
	until("hq record view", `!!document.querySelector('#history li')`)
	if got := eval(`String(!!document.querySelector('#review-approved')) + ' ' + document.querySelector('.review-box').textContent.includes('ne modifient pas')`); got != "false true" {
		t.Fatalf("HQ's record view: review buttons shown / read-only note = %s", got)
	}

	w.check(t, "end")
	if n := w.seenCount(409, "POST", "/v1/conflicts/"+r1+"/resolve"); n != 1 {
		t.Fatalf("stale resolutions seen: %d, want 1", n)
	}
	if n := w.seenCount(401, "GET", "/v1/whoami"); n != 1 {
		t.Fatalf("whoami 401s seen: %d, want 1 (the wrong token)", n)
	}
	t.Logf("screenshots (%d) in %s; browser test took %s", len(shotList), shots, time.Since(started).Round(time.Millisecond))
}

// setLang picks a language in the page's language menu, as a user does
// with the keyboard or the mouse (a change event).
func setLang(lang string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('#lang'); s.value = ` + jsString(lang) + `; s.dispatchEvent(new Event('change')); })()`)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// pageText is the visible text of the page, for failure messages; never
// the token, which the page does not show.
func pageText(ctx context.Context) string {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Evaluate[string](`location.hash + " | " + document.body.innerText.slice(0, 1500)`))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}
