package client

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// Two tablets edit the same household offline: both change the income
// (differently), each changes one other field. After both sync, and sync
// again, both hold exactly the server's state, with the income conflict
// visible on both and both other edits merged.
func TestTwoDevicesEditOffline(t *testing.T) {
	srv := MustStartServer(t)
	devA, tokA := srv.NewDevice(t, "tablet A")
	devB, tokB := srv.NewDevice(t, "tablet B")
	wireA, wireB := &wireLog{}, &wireLog{}
	a := MustOpenClient(t, "", Options{ServerURL: srv.URL, Token: tokA, Device: devA, AppVersion: "test-1", Encoding: EncodingZstd, HTTPClient: &http.Client{Transport: wireA}})
	b := MustOpenClient(t, "", Options{ServerURL: srv.URL, Token: tokB, Device: devB, AppVersion: "test-1", Encoding: EncodingGzip, HTTPClient: &http.Client{Transport: wireB}})

	id := NewID()
	notes := strings.Repeat("The roof leaks in two rooms; the family sleeps in the kitchen. ", 40) // answers over 1 KiB get compressed
	mustSave(t, a, id, "assessment", testScope, map[string]any{"household_size": 5, "head_name": "فاطمة", "monthly_income_mad": 1000, "notes": notes})
	if rep := mustSync(t, a); rep.Applied != 1 {
		t.Fatalf("A's first sync: %+v, want 1 applied", rep)
	}
	if rep := mustSync(t, b); rep.Pulled != 1 {
		t.Fatalf("B's first sync: %+v, want 1 pulled", rep)
	}

	// Offline: both edit the income, A the head's name, B the household size.
	mustSave(t, a, id, "", "", map[string]any{"monthly_income_mad": 1200, "head_name": "Fatima"})
	mustSave(t, b, id, "", "", map[string]any{"monthly_income_mad": 1500, "household_size": 6})

	mustSync(t, a)
	repB := mustSync(t, b)
	if repB.Conflicted != 1 || !slices.Equal(repB.Conflicts, []string{id}) {
		t.Errorf("B's push: %+v, want the record in conflict", repB)
	}
	mustSync(t, a)
	mustSync(t, b)

	server, _ := srv.PullAll(t)
	for _, c := range []*Client{a, b} {
		assertEqualsServer(t, c, server)
		rec, an := c.Get(id)
		if rec == nil {
			t.Fatalf("device %s lost the record", c.Device())
		}
		if !slices.Equal(an.Conflicts, []string{"monthly_income_mad"}) {
			t.Errorf("device %s: conflicts %v, want [monthly_income_mad]", c.Device(), an.Conflicts)
		}
		if got := siblingValues(rec, "monthly_income_mad"); !slices.Equal(got, []string{"1200", "1500"}) {
			t.Errorf("device %s: income siblings %v, want 1200 and 1500", c.Device(), got)
		}
		if string(an.Visible["head_name"]) != `"Fatima"` || string(an.Visible["household_size"]) != "6" {
			t.Errorf("device %s: visible %s", c.Device(), mustJSON(an.Visible))
		}
		confl, err := c.Conflicts()
		if err != nil {
			t.Fatal(err)
		}
		if len(confl) != 1 || confl[0].ID != id || !slices.Equal(confl[0].Conflicts, []string{"monthly_income_mad"}) {
			t.Errorf("device %s: Conflicts() = %+v", c.Device(), confl)
		}
	}

	// Headers and encodings on the wire.
	for _, w := range []struct {
		log *wireLog
		enc string
	}{{wireA, EncodingZstd}, {wireB, EncodingGzip}} {
		w.log.mu.Lock()
		if !slices.Equal(w.log.sent, []string{w.enc}) {
			t.Errorf("push bodies sent with Content-Encoding %v, want only %s", w.log.sent, w.enc)
		}
		if !slices.Contains(w.log.got, "zstd") {
			t.Errorf("answers came with Content-Encoding %v, want zstd for the large ones", w.log.got)
		}
		if w.log.badHeaders > 0 {
			t.Errorf("%d requests without the device time, the app version or Accept-Encoding", w.log.badHeaders)
		}
		w.log.mu.Unlock()
	}

	// A supervisor's review syncs down to the tablet; a later save on A,
	// which has seen both incomes, resolves the conflict everywhere.
	sup := srv.NewUser(t, auth.RoleSupervisor, "Samira")
	if st := srv.call(t, sup, http.MethodPost, "/v1/records/"+id+"/review", map[string]string{"state": "has_issues", "note": "income unclear"}, nil); st != http.StatusOK {
		t.Fatalf("review: status %d", st)
	}
	mustSync(t, a)
	if rv := a.Review(id); rv == nil || rv.State != "has_issues" || rv.Note != "income unclear" || rv.By != "Samira" {
		t.Errorf("A's review = %+v", rv)
	}
	mustSave(t, a, id, "", "", map[string]any{"monthly_income_mad": 1300})
	mustSync(t, a)
	mustSync(t, b)
	server, _ = srv.PullAll(t)
	for _, c := range []*Client{a, b} {
		assertEqualsServer(t, c, server)
		if _, an := c.Get(id); an.HasConflict() || string(an.Visible["monthly_income_mad"]) != "1300" {
			t.Errorf("device %s after resolution: %+v", c.Device(), an)
		}
	}
}

// siblingValues returns the values of a field's siblings, sorted.
func siblingValues(r *sp.Record, field string) []string {
	var out []string
	for _, s := range r.Fields[field] {
		out = append(out, string(s.Value))
	}
	slices.Sort(out)
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// wireLog records the encodings of pushes and answers, and checks the
// headers every request carries.
type wireLog struct {
	mu         sync.Mutex
	sent, got  []string
	badHeaders int
}

func (l *wireLog) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	if req.Method == http.MethodPost && !slices.Contains(l.sent, req.Header.Get("Content-Encoding")) {
		l.sent = append(l.sent, req.Header.Get("Content-Encoding"))
	}
	if _, err := strconv.ParseInt(req.Header.Get(sp.HeaderDeviceTime), 10, 64); err != nil ||
		req.Header.Get(sp.HeaderAppVersion) != "test-1" || req.Header.Get("Accept-Encoding") != "zstd, gzip" {
		l.badHeaders++
	}
	if err == nil && !slices.Contains(l.got, resp.Header.Get("Content-Encoding")) {
		l.got = append(l.got, resp.Header.Get("Content-Encoding"))
	}
	return resp, err
}
