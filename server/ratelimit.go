package server

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// RateLimit bounds the requests of one token, so one tablet stuck in a loop
// cannot starve the rest. Zero PerSecond turns it off.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// limiters holds one token bucket per account.
type limiters struct {
	cfg RateLimit
	mu  sync.Mutex
	m   map[string]*rate.Limiter
}

func newLimiters(cfg RateLimit) *limiters {
	return &limiters{cfg: cfg, m: map[string]*rate.Limiter{}}
}

func (l *limiters) get(id string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[id]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst)
		l.m[id] = lim
	}
	return lim
}

// limitRate answers 429 with Retry-After when the caller's token is over
// its rate. Admin tokens are not limited: they are few and trusted.
func (s *Server) limitRate(c *gin.Context) {
	a := accountOf(c)
	if s.limits == nil || a == nil || a.Role == auth.RoleAdmin {
		c.Next()
		return
	}
	r := s.limits.get(a.ID).ReserveN(time.Now(), 1)
	if !r.OK() {
		s.fail(c, sp.Errorf(sp.CodeRateLimited, "too many requests from this token"))
		return
	}
	if d := r.Delay(); d > 0 {
		r.Cancel()
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
		s.fail(c, sp.Errorf(sp.CodeRateLimited, "too many requests from this token; retry after %s", d.Round(time.Millisecond)))
		return
	}
	c.Next()
}
