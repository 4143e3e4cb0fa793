package fleet

import (
	"sort"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// Thresholds flag devices that need attention.
type Thresholds struct {
	MaxSkew   time.Duration // flag a clock further than this from the server's (default 2 minutes)
	StaleDays int           // flag a device that has not synced for this many days (default 3)
}

// WithDefaults fills in the zero thresholds: 2 minutes of skew, 3 days.
func (th Thresholds) WithDefaults() Thresholds {
	if th.MaxSkew <= 0 {
		th.MaxSkew = 2 * time.Minute
	}
	if th.StaleDays <= 0 {
		th.StaleDays = 3
	}
	return th
}

// DeviceView is one device as the fleet view shows it.
type DeviceView struct {
	ID            string   `json:"id"`
	Label         string   `json:"label"`
	Scopes        []string `json:"scopes"`
	Revoked       bool     `json:"revoked"`
	LastPush      string   `json:"last_push"`
	LastPull      string   `json:"last_pull"`
	AppVersion    string   `json:"app_version"`
	SkewMs        *int64   `json:"skew_ms"`
	RecordsPushed int64    `json:"records_pushed"`
	Flags         []string `json:"flags"` // "clock_skew", "not_synced"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return sp.Timestamp(t)
}

// View lists the devices the caller may see (admins: all; supervisors and
// HQ: those sharing a scope with them), with their figures and flags.
func (t *Tracker) View(caller *auth.Account, accounts []*auth.Account, th Thresholds, now time.Time) []DeviceView {
	th = th.WithDefaults()
	out := []DeviceView{}
	for _, a := range accounts {
		if !a.IsDevice() || !visible(caller, a) {
			continue
		}
		s := t.Get(a.ID)
		v := DeviceView{ID: a.ID, Label: a.Name, Scopes: a.Scopes, Revoked: a.Revoked, LastPush: stamp(s.LastPush), LastPull: stamp(s.LastPull),
			AppVersion: s.AppVersion, RecordsPushed: s.RecordsPushed, Flags: []string{}}
		if s.SkewKnown {
			skew := s.SkewMs
			v.SkewMs = &skew
			if time.Duration(abs(skew))*time.Millisecond > th.MaxSkew {
				v.Flags = append(v.Flags, "clock_skew")
			}
		}
		last := s.LastPush
		if s.LastPull.After(last) {
			last = s.LastPull
		}
		if !a.Revoked && (last.IsZero() || now.Sub(last) > time.Duration(th.StaleDays)*24*time.Hour) {
			v.Flags = append(v.Flags, "not_synced")
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Label < out[j].Label || (out[i].Label == out[j].Label && out[i].ID < out[j].ID)
	})
	return out
}

func visible(caller, dev *auth.Account) bool {
	if caller.AllScopes() {
		return true
	}
	for _, s := range dev.Scopes {
		if caller.InScope(s) {
			return true
		}
	}
	return false
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
