package records

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/fieldsync/fieldsync/internal/loadgen"
)

// BenchmarkPrepareItem measures the CPU a push spends on one new ~1.15 KB
// assessment (the load generator's) before the single writer, on one
// core: reading and checking the item, preparing its stored form, and its
// share of the batch hash.
func BenchmarkPrepareItem(b *testing.B) {
	const dev = "0193a6f4-7c1e-7b55-9a10-00000000000a"
	rng := rand.New(rand.NewPCG(1, 2))
	raws := make([]json.RawMessage, 500)
	size := 0
	for i := range raws {
		st, err := loadgen.Assessment(rng, dev, 1_764_000_000_000+int64(i))
		if err != nil {
			b.Fatal(err)
		}
		if raws[i], err = json.Marshal(st); err != nil {
			b.Fatal(err)
		}
		size += len(raws[i])
	}
	b.SetBytes(int64(size / len(raws)))
	var scratch []byte
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		it := decodeItem(raws[n%len(raws)])
		if it.err != nil {
			b.Fatal(it.err)
		}
		prepareFresh(&it, dev, "batch")
		if it.fresh == nil {
			b.Fatal("not prepared as fresh")
		}
		if it.hash, it.hashErr = itemHash(&it, &scratch); it.hashErr != nil {
			b.Fatal(it.hashErr)
		}
	}
}
