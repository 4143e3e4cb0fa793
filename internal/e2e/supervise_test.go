package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/klauspost/compress/zstd"
)

// TestSupervisorAndHQOverHTTP runs PROTOCOL.md §4–§5 end to end: the
// conflict queue, a stale then a good resolution, a review that reaches the
// tablet, and HQ's export (CSV with BOM, zstd on the wire) whose cursor
// pulls exactly the changes after it.
func TestSupervisorAndHQOverHTTP(t *testing.T) {
	srv := StartServer(t, t.TempDir())
	const scope = "guelmim-oued-noun"
	a := srv.NewDevice(t, "tablet A", scope)
	b := srv.NewDevice(t, "tablet B", scope)
	_, supTok := srv.CreateUser(t, "Khadija", "supervisor", scope)
	_, hqTok := srv.CreateUser(t, "HQ", "hq")

	// A long note makes the export big enough to be compressed.
	notes := strings.Repeat("الأسرة تحتاج دعما لمشروع صغير. ", 60)
	id := a.Create(t, "assessment", map[string]any{"head_name": "فاطمة, \"أم\"", "monthly_income_mad": 1200, "sector": "crafts", "notes": notes})
	a.PushChanges(t)
	b.PullMerge(t)
	a.Edit(t, id, map[string]any{"monthly_income_mad": 1400})
	b.Edit(t, id, map[string]any{"monthly_income_mad": 1500})
	a.PushChanges(t)
	if r := b.PushChanges(t).Results[0]; r.Status != "conflict" {
		t.Fatalf("second push: %+v", r)
	}

	// The queue holds the record with both siblings.
	resp, body := srv.Do(t, "GET", "/v1/conflicts?scope="+scope, supTok, nil, nil)
	var queue struct {
		Conflicts []struct {
			Record string                       `json:"record"`
			Kind   string                       `json:"kind"`
			Fields map[string][]json.RawMessage `json:"fields"`
			Clock  syncproto.Clock              `json:"clock"`
		} `json:"conflicts"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &queue) != nil || len(queue.Conflicts) != 1 ||
		queue.Conflicts[0].Record != id || queue.Conflicts[0].Kind != "fields" || len(queue.Conflicts[0].Fields["monthly_income_mad"]) != 2 {
		t.Fatalf("conflict queue: %d %s", resp.StatusCode, body)
	}
	seen := queue.Conflicts[0].Clock

	// Tablet A saves again: the clock the supervisor saw is stale, although
	// it names the same actors.
	a.Edit(t, id, map[string]any{"sector": "catering"})
	a.PushChanges(t)
	res := map[string]any{"clock": seen, "values": map[string]any{"monthly_income_mad": 1450}, "note": "called the family"}
	resp, body = srv.Do(t, "POST", "/v1/conflicts/"+id+"/resolve", supTok, mustJSON(t, res), nil)
	wantError(t, "stale resolution", resp, body, http.StatusConflict, "stale_resolution")

	_, view := srv.GetRecord(t, supTok, id)
	res["clock"] = view.Record.Clock
	resp, body = srv.Do(t, "POST", "/v1/conflicts/"+id+"/resolve", supTok, mustJSON(t, res), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	resp, body = srv.Do(t, "POST", "/v1/records/"+id+"/review", supTok, mustJSON(t, map[string]string{"state": "has_issues", "note": "re-check the income"}), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("review: %d %s", resp.StatusCode, body)
	}

	// The tablet pulls the resolution and the review.
	b.PullMerge(t)
	an := syncproto.Analyze(b.Recs[id])
	if len(an.Conflicts) != 0 || string(an.Visible["monthly_income_mad"]) != "1450" || !strings.Contains(string(an.Visible["_review"]), "re-check the income") {
		t.Fatalf("tablet B after pull: conflicts %v, income %s, review %s", an.Conflicts, an.Visible["monthly_income_mad"], an.Visible["_review"])
	}

	// HQ exports CSV with a BOM, compressed with zstd on the wire.
	resp, body = srv.Do(t, "GET", "/v1/export?format=csv&bom=true", hqTok, nil, map[string]string{"Accept-Encoding": "zstd"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "zstd" {
		t.Fatalf("export: %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	zr, err := zstd.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	zr.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(plain, []byte("\xEF\xBB\xBF")) {
		t.Fatal("CSV without the BOM asked for")
	}
	rows, err := csv.NewReader(bytes.NewReader(plain[3:])).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("CSV: %v, %d rows", err, len(rows))
	}
	if got := strings.Join(rows[0], ","); got != "id,form,scope,seq,updated_at,conflict,head_name,monthly_income_mad,notes,sector" {
		t.Errorf("header = %s", got)
	}
	if r := rows[1]; r[0] != id || r[5] != "false" || r[6] != "فاطمة, \"أم\"" || r[7] != "1450" || r[8] != notes || r[9] != "catering" {
		t.Errorf("row = %q", r)
	}
	if resp.Header.Get("X-Snapshot-Seq") != rows[1][3] {
		t.Errorf("X-Snapshot-Seq %s, record seq %s", resp.Header.Get("X-Snapshot-Seq"), rows[1][3])
	}

	// The snapshot cursor pulls exactly what changes after the export.
	cursor := resp.Header.Get("X-Snapshot-Cursor")
	if code, page := srv.Pull(t, hqTok, cursor, 100); code != 200 || len(page.Records) != 0 {
		t.Fatalf("pull from the snapshot cursor: %d, %d records", code, len(page.Records))
	}
	other := a.Create(t, "visit", map[string]any{"note": "second visit"})
	a.PushChanges(t)
	if code, page := srv.Pull(t, hqTok, cursor, 100); code != 200 || len(page.Records) != 1 || page.Records[0].ID != other {
		t.Fatalf("pull after a new push: %d, %+v", code, page.Records)
	}
}
