package server

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the request metrics every route gets.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "toolgate_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "toolgate_http_request_duration_seconds",
			Help:    "Time from receiving an HTTP request to finishing its response, by route pattern and method.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "toolgate_http_requests_in_flight",
			Help: "HTTP requests being served right now.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}

// probeRoutes are the routes load balancers and Prometheus poll: they skip
// the Host check (probes address the pod, not the public name) and log at
// debug level so they do not drown the request log.
var probeRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// middleware wraps next with, in order: the Host allowlist, the request
// body limit, metrics and the request log. next must be the ServeMux
// itself: the route label comes from the pattern the mux records on the
// request.
func (s *Server) middleware(next *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		rw := &statusWriter{ResponseWriter: w}

		probe := probeRoutes[r.URL.Path]
		if !probe && !(*s.allowedHosts.Load())[normalizeHost(r.Host)] {
			http.Error(rw, "misdirected request: this server does not answer for that host", http.StatusMisdirectedRequest)
		} else {
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(rw, r.Body, s.cfg.Server.MaxBodyBytes)
			}
			next.ServeHTTP(rw, r)
		}

		route := routeLabel(r.Pattern)
		status := rw.status()
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())

		level := slog.LevelInfo
		if probe && status < 500 {
			level = slog.LevelDebug
		}
		// The path only: query strings can hold codes and tokens.
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.Int64("bytes", rw.written),
			slog.String("remote", remoteHost(r.RemoteAddr)),
		)
	})
}

// routeLabel turns a ServeMux pattern ("GET /healthz") into a bounded
// metric label ("/healthz"); requests no route matched share one label.
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

// normalizeHost lower-cases a Host value and drops a trailing dot.
func normalizeHost(h string) string {
	h = strings.ToLower(h)
	if host, port, err := net.SplitHostPort(h); err == nil {
		return net.JoinHostPort(strings.TrimSuffix(host, "."), port)
	}
	return strings.TrimSuffix(h, ".")
}

func remoteHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// statusWriter records the status code and body size of a response.
type statusWriter struct {
	http.ResponseWriter
	code    int
	written int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach Flush, Hijack and deadlines on
// the underlying writer (streaming MCP responses need Flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush forwards to the underlying writer, for handlers that type-assert
// http.Flusher instead of using http.ResponseController.
func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}
