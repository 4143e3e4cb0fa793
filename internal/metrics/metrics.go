// Package metrics holds fieldsync's Prometheus collectors: requests and
// latency by route and status, bytes in and out, records merged by push
// outcome, batch sizes, commit latency and open conflicts. Labels never
// carry ids, tokens or values.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the set of collectors of one server.
type Metrics struct {
	Registry *prometheus.Registry

	Requests      *prometheus.CounterVec
	Latency       *prometheus.HistogramVec
	BytesIn       *prometheus.CounterVec
	BytesOut      *prometheus.CounterVec
	ItemsPushed   *prometheus.CounterVec
	BatchSize     prometheus.Histogram
	CommitLatency prometheus.Histogram
	ExportRecords prometheus.Counter
}

// New returns the collectors, registered on a new registry with the Go
// runtime and process collectors. openConflicts, if not nil, is called at
// scrape time for the fieldsync_conflicts_open gauge.
func New(openConflicts func() float64) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fieldsync_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		BytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_http_request_bytes_total", Help: "Request body bytes after decompression, by route pattern.",
		}, []string{"route"}),
		BytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_http_response_bytes_total", Help: "Response body bytes before compression, by route pattern.",
		}, []string{"route"}),
		ItemsPushed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_push_items_total", Help: "Pushed items by outcome: applied, unchanged, conflict, rejected.",
		}, []string{"status"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fieldsync_push_batch_items", Help: "Items per pushed batch.",
			Buckets: []float64{1, 5, 10, 50, 100, 250, 500, 1000, 2000},
		}),
		CommitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fieldsync_store_commit_seconds", Help: "Write transactions, from start to durable commit.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}),
		ExportRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldsync_export_records_total", Help: "Records written by exports.",
		}),
	}
	m.Registry.MustRegister(m.Requests, m.Latency, m.BytesIn, m.BytesOut, m.ItemsPushed, m.BatchSize, m.CommitLatency, m.ExportRecords,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if openConflicts != nil {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fieldsync_conflicts_open", Help: "Records holding a hard or delete_edit conflict.",
		}, openConflicts))
	}
	return m
}

// ObserveCommit records one write transaction's duration.
func (m *Metrics) ObserveCommit(d time.Duration) { m.CommitLatency.Observe(d.Seconds()) }
