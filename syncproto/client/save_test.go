package client

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

const testDevice = "6f1c0a52-0d6b-4f7e-9a3c-1b2d3e4f5a6b"

// fakeClock is a settable device clock.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

func mustOpenOffline(t *testing.T, clk *fakeClock) *Client {
	t.Helper()
	return MustOpenClient(t, "", Options{Device: testDevice, Now: clk.now})
}

// Each save is the device's next write: its count + 1, at = the device
// clock, never earlier than the previous write; it replaces the device's
// own sibling and marks the fields dirty.
func TestSaveWritesNextDot(t *testing.T) {
	clk := &fakeClock{t: time.UnixMilli(1_730_628_900_123)}
	c := mustOpenOffline(t, clk)
	id := NewID()
	mustSave(t, c, id, "assessment", "guelmim", map[string]any{"household_size": 5, "head_name": "فاطمة <&>"})
	mustSave(t, c, id, "", "", map[string]any{"household_size": 6}) // same millisecond
	clk.t = clk.t.Add(-time.Hour)                                   // the clock goes back
	mustSave(t, c, id, "assessment", "guelmim", map[string]any{"notes": nil})

	r, a := c.Get(id)
	if r == nil {
		t.Fatal("record not found")
	}
	if !r.Clock.Equal(sp.Clock{testDevice: 3}) {
		t.Errorf("clock %v, want {device: 3}", r.Clock)
	}
	want := map[string]sp.Sibling{
		"head_name":      {Dot: sp.Dot{By: testDevice, N: 1}, At: 1_730_628_900_123, Value: json.RawMessage(`"فاطمة \u003c\u0026\u003e"`)},
		"household_size": {Dot: sp.Dot{By: testDevice, N: 2}, At: 1_730_628_900_124, Value: json.RawMessage(`6`)},
		"notes":          {Dot: sp.Dot{By: testDevice, N: 3}, At: 1_730_628_900_125, Value: json.RawMessage(`null`)},
	}
	for f, w := range want {
		got := r.Fields[f]
		if len(got) != 1 || got[0].Dot != w.Dot || got[0].At != w.At || string(got[0].Value) != string(w.Value) {
			t.Errorf("%s: siblings %+v, want only %+v", f, got, w)
		}
	}
	if a.HasConflict() || a.Deleted {
		t.Errorf("analysis %+v", a)
	}
	list, err := c.List()
	if err != nil || len(list) != 1 || !slices.Equal(list[0].Dirty, []string{"head_name", "household_size", "notes"}) {
		t.Errorf("List() = %+v, %v", list, err)
	}
	if err := sp.Validate(r.State()); err != nil {
		t.Errorf("local state invalid: %v", err)
	}
}

// Delete writes _deleted = true with ctx = the clock before it; a later
// save undeletes in the same write.
func TestDeleteAndUndelete(t *testing.T) {
	clk := &fakeClock{t: time.UnixMilli(1_000)}
	c := mustOpenOffline(t, clk)
	ctx := context.Background()
	id := NewID()
	mustSave(t, c, id, "assessment", "guelmim", map[string]any{"household_size": 5})
	if err := c.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	r, a := c.Get(id)
	del := r.Fields[sp.FieldDeleted]
	if !a.Deleted || len(del) != 1 || del[0].N != 2 || !del[0].Ctx.Equal(sp.Clock{testDevice: 1}) {
		t.Fatalf("after delete: %+v, siblings %+v", a, del)
	}
	mustSave(t, c, id, "", "", map[string]any{"household_size": 7})
	r, a = c.Get(id)
	del = r.Fields[sp.FieldDeleted]
	if a.Deleted || len(del) != 1 || del[0].N != 3 || string(del[0].Value) != "false" || del[0].Ctx != nil {
		t.Errorf("after undelete: %+v, siblings %+v", a, del)
	}
	if s := r.Fields["household_size"]; len(s) != 1 || s[0].N != 3 {
		t.Errorf("the undeleting save is not one write: %+v", s)
	}
	if err := c.Delete(ctx, NewID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete of an unknown record: %v", err)
	}
}

func TestSaveRejectsBadInput(t *testing.T) {
	c := mustOpenOffline(t, &fakeClock{t: time.UnixMilli(1)})
	ctx := context.Background()
	id := NewID()
	mustSave(t, c, id, "assessment", "guelmim", map[string]any{"household_size": 5})
	deep := any(1)
	for range sp.MaxValueDepth + 1 {
		deep = []any{deep}
	}
	cases := []struct {
		name              string
		id, form, scope   string
		fields            map[string]any
		code              sp.Code
		notFound, invalid bool
	}{
		{"bad id", "ABC", "assessment", "guelmim", map[string]any{"a": 1}, sp.CodeInvalidRecord, false, true},
		{"bad form", NewID(), "Assessment!", "guelmim", map[string]any{"a": 1}, sp.CodeInvalidRecord, false, true},
		{"bad scope", NewID(), "assessment", "a b", map[string]any{"a": 1}, sp.CodeInvalidRecord, false, true},
		{"no fields", id, "", "", map[string]any{}, sp.CodeInvalidRecord, false, true},
		{"reserved", id, "", "", map[string]any{"_review": map[string]any{"state": "approved"}}, sp.CodeInvalidRecord, false, true},
		{"reserved delete", id, "", "", map[string]any{"_deleted": true}, sp.CodeInvalidRecord, false, true},
		{"bad name", id, "", "", map[string]any{"Age!": 3}, sp.CodeInvalidRecord, false, true},
		{"digit first", id, "", "", map[string]any{"1st": 3}, sp.CodeInvalidRecord, false, true},
		{"long name", id, "", "", map[string]any{"a" + strings.Repeat("b", 128): 3}, sp.CodeInvalidRecord, false, true},
		{"too large", id, "", "", map[string]any{"photo": strings.Repeat("x", sp.MaxValueBytes)}, sp.CodeTooLarge, false, true},
		{"too deep", id, "", "", map[string]any{"nested": deep}, sp.CodeInvalidRecord, false, true},
		{"NaN", id, "", "", map[string]any{"ratio": math.NaN()}, sp.CodeInvalidRecord, false, true},
		{"func", id, "", "", map[string]any{"f": func() {}}, sp.CodeInvalidRecord, false, true},
		{"form changes", id, "other", "", map[string]any{"a": 1}, sp.CodeScopeMismatch, false, true},
		{"scope changes", id, "", "elsewhere", map[string]any{"a": 1}, sp.CodeScopeMismatch, false, true},
		{"new without form", NewID(), "", "guelmim", map[string]any{"a": 1}, "", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Save(ctx, tc.id, tc.form, tc.scope, tc.fields)
			switch {
			case err == nil:
				t.Fatal("saved")
			case tc.notFound && !errors.Is(err, ErrNotFound):
				t.Errorf("%v, want ErrNotFound", err)
			case tc.invalid && (!errors.Is(err, ErrInvalid) || sp.ErrorCode(err) != tc.code):
				t.Errorf("%v (code %s), want ErrInvalid with %s", err, sp.ErrorCode(err), tc.code)
			}
			t.Logf("%v", err)
		})
	}
	r, _ := c.Get(id)
	if !r.Clock.Equal(sp.Clock{testDevice: 1}) {
		t.Errorf("a refused save changed the record: clock %v", r.Clock)
	}
	many := map[string]any{}
	for i := range sp.MaxFields + 1 {
		many["f"+strconv.Itoa(i)] = i
	}
	if err := c.Save(ctx, NewID(), "assessment", "guelmim", many); sp.ErrorCode(err) != sp.CodeTooLarge || !errors.Is(err, ErrInvalid) {
		t.Errorf("a record of %d fields: %v, want too_large", len(many), err)
	}
}

func TestOpenChecks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "device.db")
	if _, err := Open(path, Options{Device: "not-a-uuid"}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("bad device: %v", err)
	}
	if _, err := Open(path, Options{Device: testDevice, Encoding: "br"}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("bad encoding: %v", err)
	}
	if _, err := Open(path, Options{Device: testDevice, ServerURL: "ftp://x"}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("bad URL: %v", err)
	}
	c, err := Open(path, Options{Device: testDevice})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sync(context.Background()); !errors.Is(err, ErrBadOptions) {
		t.Errorf("sync without a server: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{Device: "a2b9c3d4-0000-4000-8000-000000000001"}); !errors.Is(err, ErrOtherDevice) {
		t.Errorf("another device's file: %v", err)
	}
}
