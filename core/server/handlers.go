package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// healthz answers 200 while the process is up.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// readyResult is one check in the /readyz body.
type readyResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// readyBody is the /readyz JSON body.
type readyBody struct {
	Status  string        `json:"status"` // "ready" or "unavailable"
	Checks  []readyResult `json:"checks"`
	Failing []string      `json:"failing,omitempty"`
	// Replica is this replica's ID in the replica registry.
	Replica string `json:"replica"`
	// Plugins is the plugin set this replica serves: compare Digest
	// across replicas to see that they agree.
	Plugins readyPlugins `json:"plugins"`
}

// readyz answers 200 when every readiness check passes and the server is
// not shutting down, 503 otherwise; the JSON body names each check, this
// replica and the digest of its plugin set.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	checks := append([]ReadinessCheck(nil), s.checks...)
	s.mu.Unlock()

	results := make([]readyResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), ReadinessTimeout)
			defer cancel()
			results[i] = readyResult{Name: c.Name, OK: true}
			if err := c.Check(ctx); err != nil {
				results[i] = readyResult{Name: c.Name, Error: err.Error()}
			}
		})
	}
	wg.Wait()
	if s.draining.Load() {
		results = append(results, readyResult{Name: "shutdown", Error: "the server is shutting down"})
	}
	body := readyBody{Status: "ready", Checks: results, Replica: s.replica.ID(), Plugins: s.pluginSet.ready()}
	for _, res := range results {
		if !res.OK {
			body.Failing = append(body.Failing, res.Name)
		}
	}
	status := http.StatusOK
	if len(body.Failing) > 0 {
		body.Status = "unavailable"
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// metricsHandler serves the server's registry in the Prometheus format.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		Registry:          s.reg, // counts its own errors
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	})
}
