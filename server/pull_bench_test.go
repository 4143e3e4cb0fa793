package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/klauspost/compress/zstd"
)

// BenchmarkPull measures the full feed over HTTP: 20,000 ~1 KB records
// paged by cursor with limit 1000, plain and with zstd, and reports
// records/s (the client's decoding included) and bytes on the wire.
func BenchmarkPull(b *testing.B) {
	ts, accounts := benchServer(b)
	dev, tok, err := accounts.Create(context.Background(), auth.RoleDevice, "tablet", []string{"guelmim-oued-noun"})
	if err != nil {
		b.Fatal(err)
	}
	const n = 20000
	for i := 0; i < n; i += 500 {
		items := make([]sp.State, 500)
		for k := range items {
			items[k] = assessment(dev.ID, i+k)
		}
		do(b, "POST", ts.URL+"/v1/sync/push", tok, pushBody(dev.ID, items), 200)
	}
	for _, enc := range []string{"identity", "zstd"} {
		b.Run("encoding="+enc, func(b *testing.B) {
			tr := &http.Transport{DisableCompression: true}
			client := &http.Client{Transport: tr}
			var wire int64
			start := time.Now()
			for i := 0; i < b.N; i++ {
				since := ""
				for {
					req, _ := http.NewRequest("GET", ts.URL+"/v1/sync/pull?limit=1000&since="+since, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					req.Header.Set("Accept-Encoding", enc)
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					wire += int64(len(body))
					if enc == "zstd" {
						zr, err := zstd.NewReader(bytes.NewReader(body))
						if err != nil {
							b.Fatal(err)
						}
						body, err = io.ReadAll(zr)
						zr.Close()
						if err != nil {
							b.Fatal(err)
						}
					}
					var page struct {
						Records []json.RawMessage `json:"records"`
						Cursor  string            `json:"cursor"`
						More    bool              `json:"more"`
					}
					if err := json.Unmarshal(body, &page); err != nil {
						b.Fatal(err)
					}
					if !page.More {
						break
					}
					since = page.Cursor
				}
			}
			el := time.Since(start)
			b.ReportMetric(float64(n*b.N)/el.Seconds(), "records/s")
			b.ReportMetric(float64(wire)/float64(b.N)/(1<<20), "wire-MiB")
		})
	}
}
