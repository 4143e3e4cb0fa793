package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
)

// dfMount mounts a tmpfs of the given size (e.g. "8m") on a new directory
// and unmounts it in a cleanup. Without the right to mount it skips the
// test, unless CI=true and the test runs as root: then it fails.
func dfMount(t *testing.T, size string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", mnt).CombinedOutput()
	if err != nil {
		reason := fmt.Sprintf("mounting a %s tmpfs on %s: %v: %s", size, mnt, err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatalf("%s (CI=true and root: the mount must work)", reason)
		}
		t.Skipf("%s (needs root; set CI=true as root to make this a failure)", reason)
	}
	// Registered after StartServer's cleanup would be wrong: cleanups run
	// last-registered first, and this one must run after the server stops.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; trying a lazy unmount", mnt, err, strings.TrimSpace(string(out)))
			if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount -l %s: %v: %s", mnt, err, strings.TrimSpace(string(out)))
			}
		}
	})
	return mnt
}

// dfFree is the space left for unprivileged writes on the file system of
// path.
func dfFree(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// dfFill takes all but leave bytes of the file system of dir with a filler
// file (allocated, not sparse) and returns its path.
func dfFill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	n := dfFree(t, dir) - leave
	if n <= 0 {
		t.Fatalf("only %d bytes free on %s, want more than %d", dfFree(t, dir), dir, leave)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, n); err != nil {
		// Without fallocate: write it out.
		buf := make([]byte, 1<<20)
		for left := n; left > 0; {
			k := min(left, int64(len(buf)))
			if _, err := f.Write(buf[:k]); err != nil {
				t.Fatalf("writing the filler file: %v", err)
			}
			left -= k
		}
	}
	return path
}

// dfBatch is a push refused with 507, to retry.
type dfBatch struct {
	body map[string]any
	ids  []string
}

// TestDiskFull: on a small tmpfs, pushes of big values fill the disk until
// a push answers 507 insufficient_storage. The database stays consistent:
// reads work, every acknowledged record is intact, nothing of the refused
// batch is stored; once space is freed the same batch applies, and the
// data dir checks clean after a stop.
func TestDiskFull(t *testing.T) {
	mnt := dfMount(t, "8m")
	dir := filepath.Join(mnt, "data")
	s := StartServer(t, dir)
	_, readTok := s.CreateUser(t, "superviseur Guelmim", "supervisor", scopeGON)
	d := s.NewDevice(t, "tablette Assa", scopeGON)

	// acked: each record as it was acknowledged.
	acked := map[string]*syncproto.Record{}
	ack := func(body map[string]any, ids []string, resp syncproto.PushResponse) {
		t.Helper()
		if err := d.Ack(body, resp); err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Results {
			if r.Status != syncproto.StatusApplied {
				t.Fatalf("item %s: %s %+v, want applied", r.ID, r.Status, r.Error)
			}
		}
		for _, id := range ids {
			acked[id] = d.Recs[id]
		}
	}
	photo := func() string { // 60 KiB of JSON
		b := make([]byte, 45<<10)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	mkBatch := func(n int) (map[string]any, []string) {
		for i := range n {
			d.Create(t, form, map[string]any{
				"head_name": "فاطمة الزهراء", "commune": "Assa", "household_size": i + 1,
				"notes": "Photo de la façade jointe.", "photo_jpeg_b64": photo(),
			})
		}
		return d.PushBody()
	}
	// pushRaw pushes a body and returns the status and raw answer; a
	// transport error fails the test with the server's state.
	pushRaw := func(body map[string]any) (int, []byte) {
		t.Helper()
		resp, b, err := s.do(http.MethodPost, "/v1/sync/push", d.Token, mustJSON(t, body), nil)
		if err != nil {
			exited := "still running"
			if p := s.current(); p != nil && p.exited() {
				exited = fmt.Sprintf("EXITED: %v", p.err)
			}
			t.Fatalf("push: %v (server %s)\nserver log:\n%s", err, exited, tail(s.Log(), 6000))
		}
		return resp.StatusCode, b
	}

	// A few records while there is room.
	body, ids := mkBatch(3)
	st, pr, e := s.Push(t, d.Token, body)
	if st != http.StatusOK {
		t.Fatalf("first push: status %d, error %+v", st, e)
	}
	ack(body, ids, pr)

	// Leave ~1.5 MiB, then push big values until the disk is full.
	filler := dfFill(t, mnt, 1536<<10)
	t.Logf("filler %s; %d bytes left on the tmpfs", filler, dfFree(t, mnt))
	var fullBody map[string]any
	var fullIDs []string
	var fullAnswer []byte
	pushes := 0
	for i := range 60 {
		body, ids := mkBatch(4)
		st, b := pushRaw(body)
		pushes = i + 1
		if st == http.StatusOK {
			var pr syncproto.PushResponse
			if err := json.Unmarshal(b, &pr); err != nil {
				t.Fatalf("push answer: %v; %s", err, cut(b))
			}
			ack(body, ids, pr)
			continue
		}
		e := errorOf(b)
		if st != http.StatusInsufficientStorage || e == nil || e.Code != syncproto.CodeInsufficientStorage || e.Message == "" {
			t.Fatalf("push %d on a full disk (%d bytes free): status %d, body %s; want 507 insufficient_storage\nserver log:\n%s",
				pushes, dfFree(t, mnt), st, cut(b), tail(s.Log(), 6000))
		}
		fullBody, fullIDs, fullAnswer = body, ids, b
		break
	}
	if fullBody == nil {
		t.Fatalf("no 507 after %d pushes of 240 KiB; %d bytes free", pushes, dfFree(t, mnt))
	}
	t.Logf("push %d answered 507: %s (%d bytes free; %d records acknowledged)", pushes, cut(fullAnswer), dfFree(t, mnt), len(acked))

	// The server still runs and reads work; every acknowledged record is
	// intact, and nothing of the refused batch was stored.
	if p := s.current(); p == nil || p.exited() {
		t.Fatalf("the server exited after the 507: %v\nlog:\n%s", p.err, tail(s.Log(), 6000))
	}
	var refused []dfBatch
	checkReads := func(when string, refusedAbsent bool) {
		t.Helper()
		resp, b := s.Do(t, http.MethodGet, "/healthz", "", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: /healthz status %d; %s", when, resp.StatusCode, cut(b))
		}
		st, _, e, err := s.pull(d.Token, "", 10)
		if err != nil || st != http.StatusOK {
			t.Fatalf("%s: the device's pull: status %d, error %+v, %v\nlog:\n%s", when, st, e, err, tail(s.Log(), 6000))
		}
		recs, _ := s.PullAll(t, readTok)
		got := pulledByID(recs)
		for id, want := range acked {
			r, ok := got[id]
			if !ok {
				t.Errorf("%s: acknowledged record %s missing", when, id)
				continue
			}
			if !syncproto.FromState(r.State).Equal(want) {
				t.Errorf("%s: acknowledged record %s changed: clock %v, want %v", when, id, r.Clock, want.Clock)
			}
		}
		if refusedAbsent {
			for _, rb := range refused {
				for _, id := range rb.ids {
					if _, ok := got[id]; ok {
						t.Errorf("%s: record %s of a batch refused with 507 is on the server", when, id)
					}
				}
			}
		}
		if len(got) != len(acked) {
			t.Errorf("%s: %d records on the server, %d acknowledged", when, len(got), len(acked))
		}
	}
	checkReads("disk full", true)

	// More writes while the disk is still full, each a small batch of its
	// own: each is applied (bbolt found room) or refused with 507, never
	// anything else; refused ones are retried once space is freed.
	refused = append(refused, dfBatch{fullBody, fullIDs})
	small507 := 0
	for i := range 4 {
		id := d.Create(t, form, map[string]any{"head_name": "يوسف", "commune": "Assa", "household_size": i + 2, "notes": "Saisie pendant la panne de disque."})
		it, _ := d.Item(id)
		body := map[string]any{"device": d.ID, "batch": newID(), "records": []syncproto.State{it}}
		st, b := pushRaw(body)
		switch st {
		case http.StatusOK:
			var pr syncproto.PushResponse
			if err := json.Unmarshal(b, &pr); err != nil {
				t.Fatalf("push answer: %v; %s", err, cut(b))
			}
			ack(body, []string{id}, pr)
		case http.StatusInsufficientStorage:
			if e := errorOf(b); e == nil || e.Code != syncproto.CodeInsufficientStorage {
				t.Errorf("small push on a full disk: 507 with body %s", cut(b))
			}
			refused = append(refused, dfBatch{body, []string{id}})
			small507++
		default:
			t.Fatalf("small push %d on a full disk: status %d, body %s; want 200 or 507\nserver log:\n%s", i, st, cut(b), tail(s.Log(), 6000))
		}
	}
	t.Logf("4 small pushes on the full disk: %d answered 507, %d applied", small507, 4-small507)
	checkReads("disk full, after more writes", true)

	// Free the space: the same batch (same id) now applies in full.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	t.Logf("filler removed; %d bytes free", dfFree(t, mnt))
	for _, rb := range refused {
		st, b := pushRaw(rb.body)
		if st != http.StatusOK {
			t.Fatalf("retry of a batch refused with 507, after freeing space: status %d, body %s\nlog:\n%s", st, cut(b), tail(s.Log(), 6000))
		}
		var retry syncproto.PushResponse
		if err := json.Unmarshal(b, &retry); err != nil {
			t.Fatalf("retry answer: %v; %s", err, cut(b))
		}
		ack(rb.body, rb.ids, retry) // every item applied: nothing of it had been stored
	}
	// And new pushes work.
	body, ids = mkBatch(2)
	st, b := pushRaw(body)
	if st != http.StatusOK {
		t.Fatalf("push after freeing space: status %d, body %s\nlog:\n%s", st, cut(b), tail(s.Log(), 6000))
	}
	var after syncproto.PushResponse
	if err := json.Unmarshal(b, &after); err != nil {
		t.Fatal(err)
	}
	ack(body, ids, after)
	checkReads("after freeing space", false)

	s.Stop(t)
	if out, err := RunCLI("check", "--data", dir); err != nil {
		t.Fatalf("fieldsync check after the disk was full: %v\n%s", err, out)
	}
	if !strings.Contains(s.Log(), "insufficient_storage") && !strings.Contains(s.Log(), "storage full") {
		t.Logf("note: the server log does not mention the full disk")
	}
}
