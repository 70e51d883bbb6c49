package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/replica"
)

func TestPrintReplicas(t *testing.T) {
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	digestA := "sha256:" + strings.Repeat("a", 64)
	digestB := "sha256:" + strings.Repeat("b", 64)
	add := replica.Plugin{Name: "add", Version: "1.0.0", SHA256: strings.Repeat("1", 64), Tools: []string{"add"}}
	img := replica.Plugin{Name: "generateimage", Version: "1.0.0", SHA256: strings.Repeat("2", 64), Tools: []string{"generateImage"}}
	a := replica.Info{ID: "host-a:8788", Addr: "10.0.0.1:8788", Version: "v1.2.0", StartedAt: now.Add(-time.Hour), LastSeen: now.Add(-3 * time.Second), PluginDigest: digestA, Plugins: []replica.Plugin{add, img}}
	b := a
	b.ID, b.Addr = "host-b:8788", "10.0.0.2:8788"
	tests := []struct {
		name string
		rs   []replica.Info
		want []string
		not  []string
	}{
		{"none", nil, []string{"no replicas"}, []string{"ID"}},
		{"one", []replica.Info{a}, []string{"ID  ", "host-a:8788", "10.0.0.1:8788", "2026-11-26 07:00Z", "3s ago", "sha256:aaaaaaaaaaaa ", "add,generateimage", "1 replica, plugin set " + digestA}, []string{"WARNING"}},
		{"agreeing", []replica.Info{a, b}, []string{"host-a:8788", "host-b:8788", "all 2 replicas serve the same plugin set (" + digestA + ")"}, []string{"WARNING"}},
		{"disagreeing", []replica.Info{a, func() replica.Info { c := b; c.PluginDigest, c.Plugins = digestB, []replica.Plugin{add}; return c }()},
			[]string{"WARNING: the replicas serve 2 different plugin sets", digestA + " on host-a:8788:", digestB + " on host-b:8788:",
				"generateimage 1.0.0 wasm sha256 222222222222, tools generateImage", "send each one SIGHUP"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			if err := printReplicas(&out, tt.rs, now); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("output has %q:\n%s", n, out.String())
				}
			}
		})
	}
}

// readyzDigest returns the plugin digest and replica ID /readyz reports.
func readyzDigest(t *testing.T, base string) (digest, id string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Replica string `json:"replica"`
		Plugins struct {
			Digest string   `json:"digest"`
			Names  []string `json:"names"`
		} `json:"plugins"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %d (%v)", resp.StatusCode, err)
	}
	return body.Plugins.Digest, body.Replica
}

// TestReplicasCommand: "toolgate replicas" against a running server on
// Badger lists that one replica with the plugin set /readyz reports, and
// follows a reload that changes the set.
func TestReplicasCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm plugins and starts a server")
	}
	built, err := referencePlugins()
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	for _, name := range []string{"add", "whoami"} {
		b, err := os.ReadFile(filepath.Join(built, name+".wasm"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dist, name+".wasm"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pluginsFile := filepath.Join(t.TempDir(), "plugins.toml")
	if err := os.WriteFile(pluginsFile, []byte("drop_in = \"allow\"\n[plugins.whoami]\nlist_tools = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ls := startLiveServer(t, func(cfg *config.Config) {
		cfg.Plugins.Dir = dist
		cfg.Plugins.Config = pluginsFile
		cfg.Plugins.CacheDir = filepath.Join(os.TempDir(), "toolgate-test-wasm-cache")
	})
	digest, id := readyzDigest(t, ls.public)
	if !strings.HasPrefix(digest, "sha256:") || id == "" {
		t.Fatalf("/readyz: digest %q, replica %q", digest, id)
	}
	listed := func() []replica.Info {
		t.Helper()
		code, out, errOut := ls.cli(t, "replicas", "-json")
		var rs []replica.Info
		if code != exitOK || json.Unmarshal([]byte(out), &rs) != nil {
			t.Fatalf("replicas -json = %d\n%s%s", code, out, errOut)
		}
		return rs
	}
	var rs []replica.Info
	waitReplicas(t, "the replica's first heartbeat", func() bool { rs = listed(); return len(rs) == 1 })
	r := rs[0]
	var names []string
	for _, p := range r.Plugins {
		names = append(names, p.Name)
		if len(p.SHA256) != 64 || len(p.Tools) != 1 {
			t.Errorf("plugin %+v: want its wasm sha256 and one tool", p)
		}
	}
	if r.ID != id || r.URL != ls.public || r.PluginDigest != digest || !slices.Equal(names, []string{"add", "whoami"}) {
		t.Errorf("replica = %+v, want %s at %s with digest %s and plugins add, whoami", r, id, ls.public, digest)
	}
	code, out, errOut := ls.cli(t, "replicas")
	if code != exitOK || !strings.Contains(out, id) || !strings.Contains(out, "add,whoami") || !strings.Contains(out, "1 replica, plugin set "+digest) {
		t.Errorf("replicas = %d\n%s%s", code, out, errOut)
	}

	// One plugin fewer: a new digest, in /readyz at once and in the
	// registry without waiting for the next heartbeat.
	if err := os.Remove(filepath.Join(dist, "add.wasm")); err != nil {
		t.Fatal(err)
	}
	if err := ls.s.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	newDigest, _ := readyzDigest(t, ls.public)
	if newDigest == digest || !strings.HasPrefix(newDigest, "sha256:") {
		t.Fatalf("digest after removing add = %q, before %q", newDigest, digest)
	}
	waitReplicas(t, "the registry to show the new set", func() bool {
		rs = listed()
		return len(rs) == 1 && rs[0].PluginDigest == newDigest && len(rs[0].Plugins) == 1 && rs[0].Plugins[0].Name == "whoami"
	})
}

// waitReplicas polls cond until it holds or 30 seconds pass (the server under
// test works in its own goroutines).
func waitReplicas(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
