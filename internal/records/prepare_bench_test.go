package records

import (
	"encoding/json"
	"fmt"
	"testing"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// BenchmarkPrepareItem measures the CPU a push spends on one new ~1 KB
// assessment before the single writer, on one core: reading and checking
// the item, preparing its stored form, and its share of the batch hash.
func BenchmarkPrepareItem(b *testing.B) {
	const dev = "0193a6f4-7c1e-7b55-9a10-00000000000a"
	raws := make([]json.RawMessage, 500)
	size := 0
	for i := range raws {
		fields := map[string]any{
			"head_name":          "فاطمة الزهراء بنت محمد",
			"household_size":     3 + i%6,
			"monthly_income_mad": 800 + (i*37)%2400,
			"sector":             []string{"catering", "crafts", "services", "agriculture"}[i%4],
			"requested_mad":      15000 + (i*101)%60000,
			"village":            "تيغمرت، إقليم كلميم",
			"notes":              "الأسرة تعيش في منزل من طابق واحد، الأب خرج من السجن منذ سنتين ويرغب في فتح مطعم صغير لبيع الوجبات السريعة في السوق الأسبوعي.",
			"phone":              fmt.Sprintf("+2126%08d", i),
			"gps":                map[string]float64{"lat": 28.98 + float64(i%100)/1000, "lon": -10.05},
			"visit_date":         "2026-11-02",
		}
		vals := map[string]json.RawMessage{}
		for k, v := range fields {
			vals[k], _ = json.Marshal(v)
		}
		st := sp.State{ID: fmt.Sprintf("0193a6f4-7c1e-7b55-9a10-%012d", i), Form: "assessment", Scope: "guelmim-oued-noun",
			Clock: sp.Clock{dev: uint64(i + 1)}, Writes: []sp.Write{{By: dev, N: uint64(i + 1), At: 1_764_000_000_000, Fields: vals}}}
		var err error
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
