package server

import (
	"strconv"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// measure counts each request by route pattern, method and status, with
// its latency and bytes.
func (s *Server) measure(c *gin.Context) {
	if s.metrics == nil {
		c.Next()
		return
	}
	start := time.Now()
	c.Next()
	route := routeOf(c)
	s.metrics.Requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
	s.metrics.Latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	if n := c.Writer.Size(); n > 0 {
		s.metrics.BytesOut.WithLabelValues(route).Add(float64(n))
	}
	if n, ok := c.Get(ctxBytesIn); ok {
		if v, ok := n.(int); ok {
			s.metrics.BytesIn.WithLabelValues(route).Add(float64(v))
		}
	}
}

// observePush counts a push's items by outcome and its batch size.
func (s *Server) observePush(resp *sp.PushResponse) {
	if s.metrics == nil {
		return
	}
	s.metrics.BatchSize.Observe(float64(len(resp.Results)))
	for _, r := range resp.Results {
		s.metrics.ItemsPushed.WithLabelValues(r.Status).Inc()
	}
}

// metricsHandler serves Prometheus' text format (admins only).
func (s *Server) metricsHandler() gin.HandlerFunc {
	if s.metrics == nil {
		return func(c *gin.Context) { s.fail(c, errNoRoute) }
	}
	h := promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
	return gin.WrapH(h)
}
