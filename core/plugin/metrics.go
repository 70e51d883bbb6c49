package plugin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/toolgate/toolgate/core/internal/metricsreg"
)

// metrics are the host's Prometheus collectors, all labelled by plugin.
type metrics struct {
	calls     *prometheus.CounterVec   // plugin, tool
	errors    *prometheus.CounterVec   // plugin, tool, kind
	duration  *prometheus.HistogramVec // plugin, tool
	instances *prometheus.GaugeVec     // plugin
	linear    *prometheus.GaugeVec     // plugin
	compile   *prometheus.HistogramVec // plugin
	load      *prometheus.HistogramVec // plugin
	releases  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "toolgate", Subsystem: "plugin", Name: "calls_total",
			Help: "Tool calls run by the plugin host.",
		}, []string{"plugin", "tool"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "toolgate", Subsystem: "plugin", Name: "call_errors_total",
			Help: "Failed tool calls by kind (timeout, trap, memory_limit, ...).",
		}, []string{"plugin", "tool", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "toolgate", Subsystem: "plugin", Name: "call_duration_seconds",
			Help:    "Wall time of tool calls, including waiting for an instance.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"plugin", "tool"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "toolgate", Subsystem: "plugin", Name: "instances",
			Help: "Live plugin instances (idle and busy).",
		}, []string{"plugin"}),
		linear: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "toolgate", Subsystem: "plugin", Name: "linear_memory_bytes",
			Help: "Linear memory of the live plugin instances (idle and busy), as of their last call.",
		}, []string{"plugin"}),
		compile: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "toolgate", Subsystem: "plugin", Name: "compile_seconds",
			Help:    "Time to compile a plugin (or fetch it from the compilation cache).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"plugin"}),
		load: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "toolgate", Subsystem: "plugin", Name: "load_seconds",
			Help:    "Time to load a plugin: read, verify, compile, instantiate, validate.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"plugin"}),
		releases: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "toolgate", Subsystem: "plugin", Name: "memory_releases_total",
			Help: "Times the plugin host collected garbage and returned free memory to the OS: after loading plugins, and once calls have stopped.",
		}),
	}
	var err error
	m.calls = metricsreg.Register(reg, m.calls, &err)
	m.errors = metricsreg.Register(reg, m.errors, &err)
	m.duration = metricsreg.Register(reg, m.duration, &err)
	m.instances = metricsreg.Register(reg, m.instances, &err)
	m.linear = metricsreg.Register(reg, m.linear, &err)
	m.compile = metricsreg.Register(reg, m.compile, &err)
	m.load = metricsreg.Register(reg, m.load, &err)
	m.releases = metricsreg.Register(reg, m.releases, &err)
	return m, err
}
