package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestReadyzWhileDraining: once the drain has started, /readyz answers 503
// naming the shutdown, whatever the other checks say, so a load balancer
// that still reaches this replica takes it out of rotation.
func TestReadyzWhileDraining(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	probe := func() (int, readyBody) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
		ts.s.Handler().ServeHTTP(rec, req)
		var rb readyBody
		if err := json.Unmarshal(rec.Body.Bytes(), &rb); err != nil {
			t.Fatalf("/readyz body %q: %v", rec.Body.String(), err)
		}
		return rec.Code, rb
	}
	if code, rb := probe(); code != http.StatusOK || len(rb.Failing) != 0 {
		t.Fatalf("before the drain: %d %+v", code, rb)
	}
	ts.s.draining.Store(true)
	code, rb := probe()
	if code != http.StatusServiceUnavailable || rb.Status != "unavailable" || !slices.Equal(rb.Failing, []string{"shutdown"}) || rb.Plugins.Digest == "" {
		t.Errorf("while draining: %d %+v; want 503 failing [shutdown], still naming the plugin set", code, rb)
	}
}
