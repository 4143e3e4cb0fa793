package demo_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/demo"
)

// TestDemoStory runs make demo's story against the real binary and checks
// that it tells what it promises: a conflict flagged, resolved and
// approved, seen by both tablets, and HQ's totals.
func TestDemoStory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real server")
	}
	bin := filepath.Join(t.TempDir(), "fieldsync")
	build := exec.Command("go", "build", "-o", bin, "github.com/fieldsync/fieldsync/server/cmd/fieldsync")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	if err := demo.Run(context.Background(), &out, bin); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	story := out.String()
	for _, want := range []string{
		"<- the server flagged a conflict",
		"CONFLICT on monthly_income_mad:",
		"resolved: monthly_income_mad = 1450",
		"Aicha    sees income 1450, 0 conflict(s), review approved",
		"Youssef  sees income 1450, 0 conflict(s), review approved",
		"TOTAL        6 project(s),  218000 MAD requested",
	} {
		if !strings.Contains(story, want) {
			t.Errorf("the story lacks %q:\n%s", want, story)
		}
	}
}
