package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store"
	"github.com/fieldsync/fieldsync/server"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// encodedPull is a pull answer over HTTP: its content coding, and its body
// decoded.
type encodedPull struct {
	coding, vary string
	raw, json    []byte
}

func pullWith(t *testing.T, base, token, since, accept string) encodedPull {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/sync/pull?since="+url.QueryEscape(since), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept-Encoding", accept) // set, so the client does not decode it
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("pull (Accept-Encoding %q): %d %s", accept, resp.StatusCode, raw)
	}
	if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(raw)) {
		t.Fatalf("Content-Length %s for a body of %d bytes", cl, len(raw))
	}
	p := encodedPull{coding: resp.Header.Get("Content-Encoding"), vary: resp.Header.Get("Vary"), raw: raw}
	switch p.coding {
	case "":
		p.json = raw
	case "zstd":
		d, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		p.json, err = io.ReadAll(d)
		if err != nil {
			t.Fatalf("zstd body: %v", err)
		}
	case "gzip":
		d, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		p.json, err = io.ReadAll(d)
		if err != nil {
			t.Fatalf("gzip body: %v", err)
		}
	default:
		t.Fatalf("Content-Encoding %q", p.coding)
	}
	return p
}

// Pull pages are compressed as the client's Accept-Encoding asks, before
// they are written, and one compressed page is given to the tablets of the
// same region: over real HTTP, the bytes decode to the page, another
// region's tablet is given its own, and a small page goes as it is.
func TestPullPagesCompressedAndShared(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	accounts := auth.NewService(st, nil)
	ts := httptest.NewServer(server.New(server.Options{Records: records.NewService(st, records.Options{}), Auth: accounts}).Handler())
	defer ts.Close()
	dev1, tok1, _ := accounts.Create(ctx, auth.RoleDevice, "tablet 1", []string{"guelmim-oued-noun"})
	_, tok2, _ := accounts.Create(ctx, auth.RoleDevice, "tablet 2", []string{"guelmim-oued-noun"})
	_, tok3, _ := accounts.Create(ctx, auth.RoleDevice, "tablet 3", []string{"souss-massa"})
	var items []sp.State
	for i := range 30 {
		items = append(items, assessment(dev1.ID, i))
	}
	do(t, "POST", ts.URL+"/v1/sync/push", tok1, pushBody(dev1.ID, items), 200)

	plain := pullWith(t, ts.URL, tok1, "", "identity")
	if plain.coding != "" {
		t.Fatalf("identity asked, %s given", plain.coding)
	}
	var page sp.PullResponse
	if err := json.Unmarshal(plain.json, &page); err != nil || len(page.Records) != 30 {
		t.Fatalf("plain page: %d records, %v", len(page.Records), err)
	}

	for _, c := range []struct{ accept, coding string }{
		{"zstd, gzip", "zstd"},
		{"gzip, zstd", "zstd"},
		{"gzip", "gzip"},
		{"zstd", "zstd"},
		{"gzip;q=1, zstd;q=0.5", "gzip"},
		{"gzip, zstd;q=0", "gzip"},
		{"br", ""},
		{"gzip;q=0, zstd;q=0", ""},
	} {
		p := pullWith(t, ts.URL, tok1, "", c.accept)
		if p.coding != c.coding {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", c.accept, p.coding, c.coding)
		}
		if c.coding != "" && p.vary != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Vary %q", c.accept, p.vary)
		}
		if !bytes.Equal(p.json, plain.json) {
			t.Errorf("Accept-Encoding %q: the page decodes to\n%s\nwant\n%s", c.accept, p.json, plain.json)
		}
	}

	// Another tablet of the region is given the same compressed bytes;
	// one of another region, none of its records.
	one, two := pullWith(t, ts.URL, tok1, "", "zstd"), pullWith(t, ts.URL, tok2, "", "zstd")
	if !bytes.Equal(one.raw, two.raw) {
		t.Error("two tablets of one region were given different pages")
	}
	other := pullWith(t, ts.URL, tok3, "", "zstd")
	var otherPage sp.PullResponse
	if err := json.Unmarshal(other.json, &otherPage); err != nil || len(otherPage.Records) != 0 {
		t.Fatalf("a tablet of another region was given %d records (%v)", len(otherPage.Records), err)
	}

	// The end of the feed: a page under 1 KB goes as it is.
	end := pullWith(t, ts.URL, tok1, page.Cursor, "zstd, gzip")
	if end.coding != "" || !json.Valid(end.raw) {
		t.Fatalf("a small page: Content-Encoding %q, body %q", end.coding, end.raw)
	}
}
