package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/core/replica"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/sdk/abi"
)

// The fake store keeps no key/value data: the replica registry's heartbeat
// writes go nowhere and listings are empty.
func (f *fakeStore) KVPut(context.Context, string, string, []byte, time.Duration) error { return nil }
func (f *fakeStore) KVDelete(context.Context, string, string) error                     { return nil }
func (f *fakeStore) KVGet(context.Context, string, string) ([]byte, error) {
	return nil, store.ErrNotFound
}
func (f *fakeStore) KVList(context.Context, string, string, string, int) ([]string, error) {
	return nil, nil
}

func snapshot(plugins []plugin.PluginInfo, tools []plugin.Tool) plugin.Snapshot {
	return plugin.Snapshot{Generation: 1, Plugins: plugins, Tools: tools}
}

func TestPluginDigest(t *testing.T) {
	add := plugin.PluginInfo{Name: "add", SHA256: "aa", Manifest: abi.Manifest{Version: "1.0.0"}}
	img := plugin.PluginInfo{Name: "img", SHA256: "bb"}
	addTool := plugin.Tool{Name: "add", Plugin: "add"}
	paint := plugin.Tool{Name: "paint", Plugin: "img", Rules: plugin.Rules{Permissions: []string{"b", "a"}}}
	sketch := plugin.Tool{Name: "sketch", Plugin: "img"}
	base := pluginDigest(snapshot([]plugin.PluginInfo{add, img}, []plugin.Tool{addTool, paint, sketch}))
	if !strings.HasPrefix(base, "sha256:") || len(base) != len("sha256:")+64 {
		t.Fatalf("digest %q is not sha256:<64 hex>", base)
	}
	with := func(f func(*plugin.PluginInfo, *plugin.Tool)) string {
		i, p := img, paint
		p.Rules.Permissions = append([]string(nil), paint.Rules.Permissions...)
		f(&i, &p)
		return pluginDigest(snapshot([]plugin.PluginInfo{add, i}, []plugin.Tool{addTool, p, sketch}))
	}
	tests := []struct {
		name string
		got  string
		same bool
	}{
		{"plugins and tools in another order", pluginDigest(snapshot([]plugin.PluginInfo{img, add}, []plugin.Tool{sketch, paint, addTool})), true},
		{"permissions in another order", with(func(_ *plugin.PluginInfo, p *plugin.Tool) { p.Rules.Permissions = []string{"a", "b"} }), true},
		{"other limits", with(func(_ *plugin.PluginInfo, p *plugin.Tool) { p.Limits.Timeout = time.Minute }), true},
		{"other generation", pluginDigest(plugin.Snapshot{Generation: 7, Plugins: []plugin.PluginInfo{add, img}, Tools: []plugin.Tool{addTool, paint, sketch}}), true},
		{"another wasm file", with(func(i *plugin.PluginInfo, _ *plugin.Tool) { i.SHA256 = "cc" }), false},
		{"a renamed tool", with(func(_ *plugin.PluginInfo, p *plugin.Tool) { p.Name = "draw" }), false},
		{"another permission", with(func(_ *plugin.PluginInfo, p *plugin.Tool) { p.Rules.Permissions = []string{"a"} }), false},
		{"a role rule", with(func(_ *plugin.PluginInfo, p *plugin.Tool) { p.Rules.Roles = []string{"admin"} }), false},
		{"an organization rule", with(func(_ *plugin.PluginInfo, p *plugin.Tool) { p.Rules.Organizations = []string{"org_1"} }), false},
		{"an any-permission rule", with(func(_ *plugin.PluginInfo, p *plugin.Tool) { p.Rules.AnyPermissions = []string{"x"} }), false},
		{"a plugin fewer", pluginDigest(snapshot([]plugin.PluginInfo{add}, []plugin.Tool{addTool})), false},
		{"no plugins", pluginDigest(plugin.Snapshot{}), false},
	}
	for _, tt := range tests {
		if (tt.got == base) != tt.same {
			t.Errorf("%s: digest %s, base %s; want same=%v", tt.name, tt.got, base, tt.same)
		}
	}
	// A tool moved to another plugin changes the set.
	moved := pluginDigest(snapshot([]plugin.PluginInfo{add, img}, []plugin.Tool{addTool, paint, {Name: "sketch", Plugin: "add"}}))
	if moved == base {
		t.Error("a tool moved to another plugin kept the digest")
	}

	got := replicaPlugins(snapshot([]plugin.PluginInfo{img, add}, []plugin.Tool{sketch, paint, addTool}))
	want := []replica.Plugin{{Name: "add", Version: "1.0.0", SHA256: "aa", Tools: []string{"add"}}, {Name: "img", SHA256: "bb", Tools: []string{"paint", "sketch"}}}
	if b1, b2 := mustJSON(t, got), mustJSON(t, want); b1 != b2 {
		t.Errorf("replicaPlugins = %s, want %s", b1, b2)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadyzPluginSet: /readyz names the replica and the plugin set's
// digest, and /metrics carries the same digest.
func TestReadyzPluginSet(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	code, body := get(t, ts.base+"/readyz")
	var rb readyBody
	if err := json.Unmarshal([]byte(body), &rb); err != nil || code != 200 {
		t.Fatalf("GET /readyz = %d %s (%v)", code, body, err)
	}
	empty := pluginDigest(plugin.Snapshot{})
	if rb.Plugins.Digest != empty || rb.Plugins.Names == nil || len(rb.Plugins.Names) != 0 {
		t.Errorf("plugins = %+v, want the empty set's digest %s and no names", rb.Plugins, empty)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.base, "http://"))
	if !strings.HasSuffix(rb.Replica, ":"+port) || rb.Replica != ts.s.replica.ID() {
		t.Errorf("replica = %q, want the host name and port %s", rb.Replica, port)
	}
	_, metrics := get(t, ts.base+"/metrics")
	if want := `toolgate_plugin_set_info{digest="` + empty + `"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// goodbyeStore records the key/value deletes made before it was closed.
type goodbyeStore struct {
	store.Store
	mu      sync.Mutex
	closed  bool
	deleted []string // namespace/key, deleted while open
}

func (g *goodbyeStore) KVDelete(ctx context.Context, ns, key string) error {
	g.mu.Lock()
	if !g.closed {
		g.deleted = append(g.deleted, ns+"/"+key)
	}
	g.mu.Unlock()
	return g.Store.KVDelete(ctx, ns, key)
}

func (g *goodbyeStore) Close() error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	return g.Store.Close()
}

// TestReplicaRegistryOnBadger: a server on Badger lists itself in the
// registry while it serves, and deletes its record when it drains, before
// the store closes.
func TestReplicaRegistryOnBadger(t *testing.T) {
	cfg := testConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg = ForListener(cfg, ln.Addr())
	var st *goodbyeStore
	s, err := newServer(t.Context(), cfg, testLogger(t), func(ctx context.Context, c config.StoreConfig, l *slog.Logger) (store.Store, error) {
		inner, err := openBadger(ctx, c, l)
		if err != nil {
			return nil, err
		}
		st = &goodbyeStore{Store: inner}
		return st, nil
	}, testAuthOptions(t))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var rs []replica.Info
	waitFor(t, func() bool {
		rs, err = replica.List(t.Context(), st)
		return err == nil && len(rs) == 1
	})
	r := rs[0]
	if r.ID != s.replica.ID() || r.URL != cfg.Server.PublicURL || r.Addr != ln.Addr().String() ||
		r.PluginDigest != pluginDigest(plugin.Snapshot{}) || r.StartedAt.IsZero() || r.LastSeen.Before(r.StartedAt) {
		t.Errorf("record = %+v", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	done <- nil
	st.mu.Lock()
	defer st.mu.Unlock()
	if want := store.SystemNamespace + "/replica/" + r.ID; !slices.Contains(st.deleted, want) {
		t.Errorf("deleted before close: %v, want %s", st.deleted, want)
	}
}

// TestConfiguredReplicaID: server.replica_id names the replica in /readyz
// and the registry, and starts its MCP session IDs.
func TestConfiguredReplicaID(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.ReplicaID = "web-1"
	ts := startServer(t, cfg, nil)
	_, body := get(t, ts.base+"/readyz")
	var rb readyBody
	if err := json.Unmarshal([]byte(body), &rb); err != nil || rb.Replica != "web-1" {
		t.Errorf("/readyz replica = %q (%v), want web-1", rb.Replica, err)
	}
	if got := sessionIDPrefix("web-1"); got != "web-1." {
		t.Errorf("session ID prefix %q, want web-1.", got)
	}
	if got := sessionIDPrefix(""); got != "" {
		t.Errorf("session ID prefix without a replica_id %q, want none", got)
	}
}
