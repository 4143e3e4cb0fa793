package records_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/fieldsync/fieldsync/internal/loadgen"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// BenchmarkServicePush measures a whole push below HTTP (an op is a
// record): batches of 500 new ~1.15 KB assessments (the load generator's)
// from one tablet, read, prepared, written by the single writer and
// committed with fsync to a real bbolt file. docs/performance.md counts
// its instructions with callgrind, which the machine's load does not move:
// the set-up's cost barely grows with b.N, so the difference between two
// runs is the pushes'.
func BenchmarkServicePush(b *testing.B) {
	const perBatch, templates = 500, 8
	s := newServer(b)
	rng := rand.New(rand.NewPCG(1, 2))
	probe, err := loadgen.Assessment(rng, "0193a6f4-7c1e-7b55-9a10-00000000000a", 0)
	if err != nil {
		b.Fatal(err)
	}
	dev := s.tablet("tablet A", probe.Scope).acc
	at := s.wall
	// batch builds a push body of n new assessments, and gives the
	// positions of its ids (the batch's first), so that copies of it can
	// be given new ones.
	batch := func(n int) (body []byte, ids []int) {
		bid := newUUID(b)
		items := make([]sp.State, n)
		for j := range items {
			if items[j], err = loadgen.Assessment(rng, dev.ID, at); err != nil {
				b.Fatal(err)
			}
			at++
		}
		body = pushBodyBatch(b, dev.ID, bid, items...)
		from := 0 // the ids are in the body in this order
		for _, id := range append([]string{bid}, idsOf(items)...) {
			from += bytes.Index(body[from:], []byte(id))
			ids = append(ids, from)
		}
		return body, ids
	}
	type template struct {
		body []byte
		ids  []int
	}
	var tmpl []template
	for range templates {
		body, ids := batch(perBatch)
		tmpl = append(tmpl, template{body, ids})
	}
	var bodies [][]byte
	size := 0
	for n := 0; n < b.N; n += perBatch {
		var body []byte
		if b.N-n < perBatch {
			body, _ = batch(b.N - n)
		} else {
			t := tmpl[len(bodies)%templates]
			body = bytes.Clone(t.body)
			for _, pos := range t.ids {
				copy(body[pos:], uuid.Must(uuid.NewV7()).String())
			}
		}
		bodies = append(bodies, body)
		size += len(body)
	}
	b.SetBytes(int64(size / b.N))
	b.ResetTimer()
	for _, body := range bodies {
		resp, err := s.svc.Push(s.ctx, dev, body)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range resp.Results {
			if r.Status != sp.StatusApplied {
				b.Fatalf("a new record was %s: %+v", r.Status, r)
			}
		}
	}
}

func idsOf(items []sp.State) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}
