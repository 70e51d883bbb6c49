package admin

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/toolgate/toolgate/core/store"
)

// Config.Debug is served under /debug/ only with the admin token and only
// to loopback callers; without it /debug/ does not exist.
func TestAdminDebug(t *testing.T) {
	st, _, _, _ := setup(t)
	token := store.NewSecret()
	debug := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "profile of "+r.URL.Path) })
	withDebug, err := NewHandler(Config{Token: token, Logger: slog.New(slog.DiscardHandler), Debug: debug}, st)
	if err != nil {
		t.Fatal(err)
	}
	without, err := NewHandler(Config{Token: token, Logger: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		h        http.Handler
		remote   string
		token    string
		wantCode int
		wantBody string
	}{
		{"token, loopback", withDebug, "127.0.0.1:5555", token, http.StatusOK, "profile of /debug/pprof/heap"},
		{"no token", withDebug, "127.0.0.1:5555", "", http.StatusUnauthorized, ""},
		{"wrong token", withDebug, "127.0.0.1:5555", store.NewSecret(), http.StatusUnauthorized, ""},
		{"not loopback", withDebug, "192.0.2.1:5555", token, http.StatusForbidden, ""},
		{"no Debug handler", without, "127.0.0.1:5555", token, http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/debug/pprof/heap", nil)
			req.RemoteAddr = tt.remote
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tt.wantCode, rec.Body.String())
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body %q, want %q", rec.Body.String(), tt.wantBody)
			}
		})
	}
}
