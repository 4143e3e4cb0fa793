package server

import (
	"net/http"
	"strconv"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/fleet"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/gin-gonic/gin"
)

// noteDevice tells the fleet tracker about a device's push or pull.
func (s *Server) noteDevice(c *gin.Context, push bool, records int) {
	a := accountOf(c)
	if s.fleet == nil || a == nil || !a.IsDevice() {
		return
	}
	devTime, _ := strconv.ParseInt(c.GetHeader(sp.HeaderDeviceTime), 10, 64)
	s.fleet.Seen(fleet.Request{Device: a.ID, Push: push, Records: records, Now: s.now(), DeviceTime: devTime, AppVersion: c.GetHeader(sp.HeaderAppVersion)})
}

// fleetView is GET /v1/admin/devices: admins see every device; supervisors
// and HQ see the devices of their scopes.
func (s *Server) fleetView(c *gin.Context) {
	a := accountOf(c)
	if a.Role == auth.RoleDevice {
		s.fail(c, sp.Errorf(sp.CodeForbidden, "devices do not see the fleet"))
		return
	}
	if s.fleet == nil {
		s.fail(c, errNoRoute)
		return
	}
	accounts, err := s.auth.Accounts(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	th := s.fleetThresholds.WithDefaults()
	writeJSON(c, http.StatusOK, gin.H{
		"devices":     s.fleet.View(a, accounts, th, now),
		"server_time": sp.Timestamp(now),
		"max_skew_ms": th.MaxSkew.Milliseconds(),
		"stale_days":  th.StaleDays,
	})
}
