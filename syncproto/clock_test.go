package syncproto_test

import (
	"testing"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

func TestClockCompare(t *testing.T) {
	const a, b, c = "0193a6f4-7c1e-7b55-9a10-00000000000a", "0193a6f4-7c1e-7b55-9a10-00000000000b", "0193a6f4-7c1e-7b55-9a10-00000000000c"
	for _, tc := range []struct {
		name              string
		x, y              sp.Clock
		equal, xDominates bool
	}{
		{"both empty", sp.Clock{}, sp.Clock{}, true, true},
		{"nil and empty", nil, sp.Clock{}, true, true},
		{"same", sp.Clock{a: 2, b: 1}, sp.Clock{a: 2, b: 1}, true, true},
		{"one entry ahead, same actors", sp.Clock{a: 3, b: 1}, sp.Clock{a: 2, b: 1}, false, true},
		{"one entry behind, same actors", sp.Clock{a: 2, b: 1}, sp.Clock{a: 3, b: 1}, false, false},
		{"concurrent, same actors", sp.Clock{a: 3, b: 1}, sp.Clock{a: 2, b: 2}, false, false},
		{"more actors", sp.Clock{a: 1, b: 1}, sp.Clock{a: 1}, false, true},
		{"other actors", sp.Clock{a: 1}, sp.Clock{c: 1}, false, false},
	} {
		if got := tc.x.Equal(tc.y); got != tc.equal {
			t.Errorf("%s: %v.Equal(%v) = %v", tc.name, tc.x, tc.y, got)
		}
		if got := tc.y.Equal(tc.x); got != tc.equal {
			t.Errorf("%s: Equal is not symmetric", tc.name)
		}
		if got := tc.x.Dominates(tc.y); got != tc.xDominates {
			t.Errorf("%s: %v.Dominates(%v) = %v", tc.name, tc.x, tc.y, got)
		}
	}
}
