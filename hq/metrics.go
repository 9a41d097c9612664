package hq

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are HQ's Prometheus figures. Each Service has its own registry,
// so tests and the demo can run several.
type metrics struct {
	reg         *prometheus.Registry
	batches     *prometheus.CounterVec // by outcome
	events      *prometheus.CounterVec // by outcome: stored, duplicate, rejected
	quarantined prometheus.Counter
	hellos      prometheus.Counter
	ingestSecs  prometheus.Histogram
}

func newMetrics(s *Service) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgepos_hq_batches_total",
			Help: "Event batches handled, by outcome (acked, quarantined, retried)."}, []string{"outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgepos_hq_events_total",
			Help: "Events ingested, by outcome (stored, duplicate, rejected)."}, []string{"outcome"}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgepos_hq_quarantined_total",
			Help: "Messages and events put in quarantine."}),
		hellos: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgepos_hq_hellos_total",
			Help: "Terminal hellos answered."}),
		ingestSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edgepos_hq_batch_seconds",
			Help:    "Time to store and ack one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	m.reg.MustRegister(m.batches, m.events, m.quarantined, m.hellos, m.ingestSecs,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
		&fleetCollector{s: s})
	return m
}

// fleetCollector reports per-terminal lag from HQ's fleet projection at
// scrape time.
type fleetCollector struct{ s *Service }

var (
	descOnline  = prometheus.NewDesc("edgepos_hq_terminal_online", "1 when the terminal's status is online.", []string{"store", "terminal"}, nil)
	descBacklog = prometheus.NewDesc("edgepos_hq_terminal_backlog_events", "Events the terminal reported waiting to sync in its last hello.", []string{"store", "terminal"}, nil)
	descOldest  = prometheus.NewDesc("edgepos_hq_terminal_oldest_unsynced_seconds", "Age of the terminal's oldest unsynced event at its last hello (0 when none).", []string{"store", "terminal"}, nil)
	descAcked   = prometheus.NewDesc("edgepos_hq_terminal_acked_seq", "Highest contiguous seq HQ holds for the terminal.", []string{"store", "terminal"}, nil)
	descSince   = prometheus.NewDesc("edgepos_hq_terminal_last_upload_age_seconds", "Seconds since the terminal's last upload.", []string{"store", "terminal"}, nil)
)

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOnline, descBacklog, descOldest, descAcked, descSince} {
		ch <- d
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	if c.s.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fleet, err := c.s.store.Fleet(ctx)
	if err != nil {
		c.s.log.Warn("metrics: read fleet", "err", err)
		return
	}
	now := c.s.opts.Now()
	for _, t := range fleet {
		on := 0.0
		if t.Online {
			on = 1
		}
		var oldest, since float64
		if !t.OldestUnsynced.IsZero() && t.Backlog > 0 {
			oldest = now.Sub(t.OldestUnsynced).Seconds()
		}
		if !t.LastUpload.IsZero() {
			since = now.Sub(t.LastUpload).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descOnline, prometheus.GaugeValue, on, t.Store, t.Terminal)
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(t.Backlog), t.Store, t.Terminal)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, oldest, t.Store, t.Terminal)
		ch <- prometheus.MustNewConstMetric(descAcked, prometheus.GaugeValue, float64(t.AckedSeq), t.Store, t.Terminal)
		ch <- prometheus.MustNewConstMetric(descSince, prometheus.GaugeValue, since, t.Store, t.Terminal)
	}
}
