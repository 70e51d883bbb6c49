package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/core/auth/admin"
)

// server.pprof serves Go's profiles on the admin listener only, behind the
// admin token; off (the default), /debug/pprof/ exists nowhere.
func TestPprof(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[on], func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Server.AdminListen = "127.0.0.1:0"
			cfg.Server.Pprof = on
			s := startBadgerServer(t, cfg, testLogger(t), nil)
			tok, err := os.ReadFile(filepath.Join(cfg.Store.Dir, admin.TokenFile))
			if err != nil {
				t.Fatal(err)
			}
			token := strings.TrimSpace(string(tok))
			adminURL := "http://" + s.AdminAddr() + "/debug/pprof/"
			want := http.StatusNotFound
			if on {
				want = http.StatusOK
			}
			for _, path := range []string{"cmdline", "goroutine?debug=1", "heap"} {
				if resp, body := do(t, "GET", adminURL+path, "", token); resp.StatusCode != want {
					t.Errorf("admin %s = %d, want %d: %.200s", path, resp.StatusCode, want, body)
				}
			}
			if on {
				if resp, body := do(t, "GET", adminURL+"goroutine?debug=1", "", token); !strings.Contains(body, "goroutine profile:") {
					t.Errorf("goroutine profile = %d %.200s, want a goroutine profile", resp.StatusCode, body)
				}
			}
			if resp, _ := do(t, "GET", adminURL+"cmdline", "", ""); on && resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("profiles without the admin token = %d, want 401", resp.StatusCode)
			}
			if resp, _ := do(t, "GET", s.cfg.Server.PublicURL+"/debug/pprof/cmdline", "", token); resp.StatusCode != http.StatusNotFound {
				t.Errorf("profiles on the public listener = %d, want 404", resp.StatusCode)
			}
		})
	}
}
