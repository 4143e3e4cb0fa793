package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/fleet"
	"github.com/fieldsync/fieldsync/internal/metrics"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store"
	"github.com/fieldsync/fieldsync/server"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// TestMetricsMoveWithTraffic scrapes /metrics after real pushes and pulls
// over loopback HTTP and checks that the counters moved; only admins may
// scrape.
func TestMetricsMoveWithTraffic(t *testing.T) {
	ctx := context.Background()
	var st *store.Store
	m := metrics.New(func() float64 { n, _ := st.CountConflicts(ctx); return float64(n) })
	st, err := store.Open(t.TempDir(), store.Options{OnCommit: m.ObserveCommit})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	accounts := auth.NewService(st, nil)
	tracker, err := fleet.NewTracker(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(server.Options{Records: records.NewService(st, records.Options{}), Auth: accounts, Metrics: m, Fleet: tracker}).Handler())
	defer ts.Close()
	admin, adminTok, _ := accounts.Create(ctx, auth.RoleAdmin, "admin", nil)
	_ = admin
	dev, devTok, _ := accounts.Create(ctx, auth.RoleDevice, "tablet", []string{"guelmim-oued-noun"})

	items := []sp.State{assessment(dev.ID, 1), assessment(dev.ID, 2), assessment(dev.ID, 3)}
	do(t, "POST", ts.URL+"/v1/sync/push", devTok, pushBody(dev.ID, items), 200)
	do(t, "GET", ts.URL+"/v1/sync/pull", devTok, nil, 200)
	do(t, "GET", ts.URL+"/v1/sync/pull?since=garbage", devTok, nil, 400)

	do(t, "GET", ts.URL+"/metrics", devTok, nil, 403)
	do(t, "GET", ts.URL+"/metrics", "", nil, 401)
	body := do(t, "GET", ts.URL+"/metrics", adminTok, nil, 200)
	for _, c := range []struct {
		pattern string
		min     float64
	}{
		{`fieldsync_http_requests_total\{method="POST",route="/v1/sync/push",status="200"\} (\S+)`, 1},
		{`fieldsync_http_requests_total\{method="GET",route="/v1/sync/pull",status="200"\} (\S+)`, 1},
		{`fieldsync_http_requests_total\{method="GET",route="/v1/sync/pull",status="400"\} (\S+)`, 1},
		{`fieldsync_push_items_total\{status="applied"\} (\S+)`, 3},
		{`fieldsync_push_batch_items_count (\S+)`, 1},
		{`fieldsync_store_commit_seconds_count (\S+)`, 1},
		{`fieldsync_http_request_bytes_total\{route="/v1/sync/push"\} (\S+)`, 1000},
		{`fieldsync_conflicts_open (\S+)`, 0},
	} {
		got := regexp.MustCompile(`(?m)^` + c.pattern).FindSubmatch(body)
		if got == nil {
			t.Errorf("no line matches %s", c.pattern)
			continue
		}
		if v, err := strconv.ParseFloat(string(got[1]), 64); err != nil || v < c.min {
			t.Errorf("%s = %s, want at least %v", c.pattern, got[1], c.min)
		}
	}
	if bytes.Contains(body, []byte(devTok)) || bytes.Contains(body, []byte(dev.ID)) {
		t.Error("metrics carry a token or an actor id")
	}

	// The fleet view saw the device's push and pull.
	var fv struct {
		Devices    []fleet.DeviceView `json:"devices"`
		ServerTime string             `json:"server_time"`
		MaxSkewMs  int64              `json:"max_skew_ms"`
		StaleDays  int                `json:"stale_days"`
	}
	if err := json.Unmarshal(do(t, "GET", ts.URL+"/v1/admin/devices", adminTok, nil, 200), &fv); err != nil {
		t.Fatal(err)
	}
	if len(fv.Devices) != 1 || fv.Devices[0].RecordsPushed != 3 || fv.Devices[0].LastPush == "" || fv.Devices[0].LastPull == "" {
		t.Errorf("fleet view = %+v", fv.Devices)
	}
	if fv.ServerTime == "" || fv.MaxSkewMs != 120000 || fv.StaleDays != 3 {
		t.Errorf("fleet thresholds = %q %d %d", fv.ServerTime, fv.MaxSkewMs, fv.StaleDays)
	}
}

func do(t testing.TB, method, url, token string, body []byte, want int) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	return b
}
