package syncproto

import "sort"

// Clock is a vector clock: for each actor (a UUID), how many of that actor's
// writes to a record are known. Counts are ≥ 1; an absent actor counts 0.
type Clock map[string]uint64

// Dot names one write: the actor that made it and its count.
type Dot struct {
	By string `json:"by"`
	N  uint64 `json:"n"`
}

// Less orders dots by actor, then count.
func (d Dot) Less(o Dot) bool {
	if d.By != o.By {
		return d.By < o.By
	}
	return d.N < o.N
}

// Covers reports whether the clock has seen the write d.
func (c Clock) Covers(d Dot) bool { return c[d.By] >= d.N }

// Dominates reports whether c has seen everything o has (c ≥ o pointwise).
func (c Clock) Dominates(o Clock) bool {
	for a, n := range o {
		if c[a] < n {
			return false
		}
	}
	return true
}

// Equal reports whether both clocks hold the same counts.
func (c Clock) Equal(o Clock) bool {
	if len(c) != len(o) {
		return false
	}
	for a, n := range c {
		if m, ok := o[a]; !ok || m != n {
			return false
		}
	}
	return true
}

// Copy returns a copy of c (nil for nil).
func (c Clock) Copy() Clock {
	if c == nil {
		return nil
	}
	out := make(Clock, len(c))
	for a, n := range c {
		out[a] = n
	}
	return out
}

// Max returns the pointwise maximum of c and o, a new clock.
func (c Clock) Max(o Clock) Clock {
	out := make(Clock, len(c)+len(o))
	for a, n := range c {
		out[a] = n
	}
	for a, n := range o {
		if n > out[a] {
			out[a] = n
		}
	}
	return out
}

// Actors returns the clock's actors in ascending order.
func (c Clock) Actors() []string {
	out := make([]string, 0, len(c))
	for a := range c {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
