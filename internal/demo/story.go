package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/syncproto/client"
)

// household is one assessment of the story.
type household struct {
	head, village, sector string
	size, income          int
	requested             int
	project               string
}

func (h household) fields() map[string]any {
	return map[string]any{
		"head_name": h.head, "village": h.village, "household_size": h.size, "monthly_income_mad": h.income,
		"sector": h.sector, "requested_mad": h.requested, "project": h.project, "visit_date": "2026-11-24",
	}
}

var fieldWork = []household{
	{"فاطمة أيت باها", "تيغمرت", "catering", 5, 1200, 45000, "مطعم صغير للوجبات في السوق الأسبوعي"},
	{"محمد أوبلا", "أسرير", "crafts", 4, 900, 30000, "ورشة لصناعة الحصير التقليدي"},
	{"Hassan Idbella", "Guelmim", "services", 3, 1500, 25000, "réparation de téléphones"},
	{"خديجة بوزيد", "فاصك", "agriculture", 7, 700, 60000, "تربية الماعز وإنتاج الحليب"},
	{"Rachid Amzil", "Tan-Tan", "catering", 2, 1100, 38000, "snack près de la gare routière"},
	{"عائشة الحسني", "أسا", "crafts", 6, 800, 20000, "خياطة الملابس التقليدية"},
}

func openTablet(dir, who, url string, a account) (*client.Client, error) {
	return client.Open(filepath.Join(dir, who+".tablet"), client.Options{
		ServerURL: url, Token: a.token, Device: a.id, AppVersion: "demo-1.0", Encoding: "zstd",
	})
}

// printer writes the story.
type printer struct {
	w io.Writer
	n int
}

func (p *printer) title(s string) {
	if p.n > 0 {
		fmt.Fprintln(p.w)
	}
	p.n++
	fmt.Fprintf(p.w, "== %s\n", s)
}

func (p *printer) say(format string, args ...any) {
	fmt.Fprintf(p.w, "   "+format+"\n", args...)
}

// values prints a record's visible values, one a line, sorted.
func (p *printer) values(v map[string]json.RawMessage) {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(p.w, "     %-20s %s\n", k, v[k])
	}
}

// pad pads s with spaces to n characters (not bytes: Arabic letters take
// two bytes each).
func pad(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}
