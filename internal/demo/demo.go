// Package demo is `fieldsync demo`: a scripted field story a newcomer can
// watch. It starts a real server on loopback in a temporary directory, then
// two investigators' tablets (the syncproto/client SDK) capture household
// assessments offline, edit the same household concurrently and sync; a
// supervisor resolves the conflict and approves the file; the tablets see
// the decision; HQ exports the merged dataset as CSV.
package demo

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/syncproto/client"
)

// Scope is the region of the story.
const Scope = "guelmim-oued-noun"

// Run tells the story on w. binary is the fieldsync executable to serve
// with. It returns the first error; the server is stopped and its
// directory removed in every case.
func Run(ctx context.Context, w io.Writer, binary string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "fieldsync-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p := &printer{w: w}

	p.title("0. A fieldsync server starts on this machine, with an empty database")
	srv, err := startServer(ctx, binary, filepath.Join(dir, "server"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	p.say("server at %s, data in a temporary directory", srv.URL)

	p.title("1. The admin enrolls two tablets, a supervisor and headquarters")
	admin := &api{url: srv.URL, token: srv.AdminToken}
	aicha, err := admin.enroll(ctx, "tablet of Aicha")
	if err != nil {
		return err
	}
	youssef, err := admin.enroll(ctx, "tablet of Youssef")
	if err != nil {
		return err
	}
	sup, err := admin.user(ctx, "Khadija (supervisor)", "supervisor", []string{Scope})
	if err != nil {
		return err
	}
	hq, err := admin.user(ctx, "HQ Rabat", "hq", nil)
	if err != nil {
		return err
	}
	p.say("tablets of Aicha and Youssef in %s; supervisor Khadija; HQ", Scope)

	tabA, err := openTablet(dir, "aicha", srv.URL, aicha)
	if err != nil {
		return err
	}
	defer tabA.Close()
	tabB, err := openTablet(dir, "youssef", srv.URL, youssef)
	if err != nil {
		return err
	}
	defer tabB.Close()

	p.title("2. Offline in the field: each tablet captures household assessments")
	households := map[string]string{}
	for i, h := range fieldWork {
		tab, who := tabA, "Aicha"
		if i%2 == 1 {
			tab, who = tabB, "Youssef"
		}
		id := client.NewID()
		households[h.head] = id
		if err := tab.Save(ctx, id, "assessment", Scope, h.fields()); err != nil {
			return err
		}
		p.say("%-8s captured %s %-12s %5d MAD/month, asks %6d MAD", who, pad(h.head, 22), h.sector, h.income, h.requested)
	}

	p.title("3. Back in range: both tablets sync")
	if err := syncAll(ctx, p, tabA, "Aicha", tabB, "Youssef", tabA, "Aicha"); err != nil {
		return err
	}

	target := fieldWork[0].head
	id := households[target]
	p.title("4. Offline again, both edit the household of " + target)
	if err := tabA.Save(ctx, id, "assessment", Scope, map[string]any{"monthly_income_mad": 1400, "household_size": 6}); err != nil {
		return err
	}
	p.say("Aicha:   income 1400 MAD, household size 6 (a baby was born)")
	if err := tabB.Save(ctx, id, "assessment", Scope, map[string]any{"monthly_income_mad": 1500, "notes": "الزوجة بدأت العمل في الخياطة"}); err != nil {
		return err
	}
	p.say("Youssef: income 1500 MAD, a note that the wife started sewing work")

	p.title("5. They sync: the different fields merge, the income is a conflict")
	if err := syncAll(ctx, p, tabA, "Aicha", tabB, "Youssef", tabA, "Aicha"); err != nil {
		return err
	}
	supAPI := &api{url: srv.URL, token: sup.token}
	var view recordView
	if err := supAPI.get(ctx, "/v1/records/"+id, &view); err != nil {
		return err
	}
	p.say("merged record as the supervisor sees it:")
	p.values(view.Values)
	for field, sibs := range view.Conflicts {
		p.say("CONFLICT on %s:", field)
		for _, s := range sibs {
			p.say("    %s from %s", s.V, name(s.By, aicha, youssef))
		}
	}

	p.title("6. The supervisor resolves the conflict and approves the file")
	var queue struct {
		Conflicts []struct {
			Record string `json:"record"`
		} `json:"conflicts"`
	}
	if err := supAPI.get(ctx, "/v1/conflicts?scope="+Scope, &queue); err != nil {
		return err
	}
	p.say("conflict queue: %d record(s)", len(queue.Conflicts))
	res := map[string]any{"clock": view.Record.Clock, "values": map[string]any{"monthly_income_mad": 1450}, "note": "called the family: 1450 MAD since October"}
	if err := supAPI.post(ctx, "/v1/conflicts/"+id+"/resolve", res, &view); err != nil {
		return err
	}
	p.say("resolved: monthly_income_mad = %s (note: called the family)", view.Values["monthly_income_mad"])
	if err := supAPI.post(ctx, "/v1/records/"+id+"/review", map[string]string{"state": "approved", "note": "file complete, project can be funded"}, &view); err != nil {
		return err
	}
	p.say("review: approved, \"file complete, project can be funded\"")

	p.title("7. The tablets sync and show the decision")
	if err := syncAll(ctx, p, tabA, "Aicha", tabB, "Youssef"); err != nil {
		return err
	}
	for _, t := range []struct {
		tab *client.Client
		who string
	}{{tabA, "Aicha"}, {tabB, "Youssef"}} {
		_, a := t.tab.Get(id)
		rv := t.tab.Review(id)
		review := "none"
		if rv != nil {
			review = fmt.Sprintf("%s by %s: %q", rv.State, rv.By, rv.Note)
		}
		p.say("%-8s sees income %s, %d conflict(s), review %s", t.who, a.Visible["monthly_income_mad"], len(a.ConflictFields()), review)
	}

	p.title("8. HQ exports the merged dataset (CSV) and sums the requests")
	return hqReport(ctx, p, &api{url: srv.URL, token: hq.token})
}

// syncAll syncs the tablets in the order given (name after each).
func syncAll(ctx context.Context, p *printer, pairs ...any) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		tab, who := pairs[i].(*client.Client), pairs[i+1].(string)
		rep, err := tab.Sync(ctx)
		if err != nil {
			return fmt.Errorf("%s sync: %w", who, err)
		}
		line := fmt.Sprintf("%-8s synced: pushed %d applied, %d conflict, pulled %d", who, rep.Applied, rep.Conflicted, rep.Pulled)
		if len(rep.Conflicts) > 0 {
			line += "  <- the server flagged a conflict"
		}
		p.say("%s", line)
	}
	return nil
}

func hqReport(ctx context.Context, p *printer, hq *api) error {
	body, hdr, err := hq.raw(ctx, "/v1/export?format=csv")
	if err != nil {
		return err
	}
	rows, err := csv.NewReader(body).ReadAll()
	body.Close()
	if err != nil {
		return err
	}
	p.say("snapshot seq %s, %d records", hdr.Get("X-Snapshot-Seq"), len(rows)-1)
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	perSector := map[string]int{}
	asked := map[string]int{}
	total := 0
	for _, r := range rows[1:] {
		s := r[col["sector"]]
		n, _ := strconv.Atoi(r[col["requested_mad"]])
		perSector[s]++
		asked[s] += n
		total += n
	}
	sectors := make([]string, 0, len(perSector))
	for s := range perSector {
		sectors = append(sectors, s)
	}
	sort.Strings(sectors)
	for _, s := range sectors {
		p.say("  %-12s %d project(s), %7d MAD requested", s, perSector[s], asked[s])
	}
	p.say("  %-12s %d project(s), %7d MAD requested", "TOTAL", len(rows)-1, total)
	return nil
}

func name(actor string, a, b account) string {
	switch actor {
	case a.id:
		return "Aicha's tablet"
	case b.id:
		return "Youssef's tablet"
	}
	return actor
}

// recordView is the part of GET /v1/records/{id} the story shows.
type recordView struct {
	Record struct {
		Clock map[string]uint64 `json:"clock"`
	} `json:"record"`
	Values    map[string]json.RawMessage `json:"values"`
	Conflicts map[string][]struct {
		V  json.RawMessage `json:"v"`
		By string          `json:"by"`
	} `json:"conflicts"`
}
