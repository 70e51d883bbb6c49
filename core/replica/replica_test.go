package replica_test

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/replica"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/badgerstore"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := badgerstore.Open(t.Context(), badgerstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newRegistry(t *testing.T, st store.PluginKV, id string, cfg replica.Config) *replica.Registry {
	t.Helper()
	cfg.Store = st
	cfg.Self.ID = id
	cfg.Self.URL = "https://mcp.example.com"
	cfg.Self.StartedAt = time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	r, err := replica.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func list(t *testing.T, st store.PluginKV) []replica.Info {
	t.Helper()
	rs, err := replica.List(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func ids(rs []replica.Info) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// TestTwoReplicasOneStore: two registries on one store list each other with
// their plugin sets; a goodbye removes one at once.
func TestTwoReplicasOneStore(t *testing.T) {
	st := openStore(t)
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := newRegistry(t, st, "host-a:8788", replica.Config{Now: clock})
	b := newRegistry(t, st, "host-b:8788", replica.Config{Now: clock})
	if got := list(t, st); len(got) != 0 {
		t.Fatalf("before any heartbeat: %v", got)
	}
	plugins := []replica.Plugin{{Name: "add", Version: "1.0.0", SHA256: "ab12", Tools: []string{"add"}}}
	a.SetPlugins("sha256:1111", plugins)
	plugins[0].Tools[0] = "changed" // the registry keeps its own copy
	b.SetPlugins("sha256:2222", nil)
	for _, r := range []*replica.Registry{b, a} {
		if err := r.Beat(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	got := list(t, st)
	want := []replica.Info{
		{ID: "host-a:8788", URL: "https://mcp.example.com", StartedAt: a.Self().StartedAt, LastSeen: now, PluginDigest: "sha256:1111",
			Plugins: []replica.Plugin{{Name: "add", Version: "1.0.0", SHA256: "ab12", Tools: []string{"add"}}}},
		{ID: "host-b:8788", URL: "https://mcp.example.com", StartedAt: b.Self().StartedAt, LastSeen: now, PluginDigest: "sha256:2222", Plugins: []replica.Plugin{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List =\n%+v\nwant\n%+v", got, want)
	}
	if d := replica.Digests(got); len(d) != 2 {
		t.Errorf("Digests = %v, want two distinct sets", d)
	}
	if err := a.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := ids(list(t, st)); !reflect.DeepEqual(got, []string{"host-b:8788"}) {
		t.Errorf("after a left: %v, want only host-b:8788", got)
	}
}

// TestRunHeartbeatsAndLeaves: Run writes at once, rewrites on SetPlugins
// without waiting for the interval, and deletes the record when stopped.
func TestRunHeartbeatsAndLeaves(t *testing.T) {
	st := openStore(t)
	r := newRegistry(t, st, "replica-1", replica.Config{Interval: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	waitFor(t, "the first heartbeat", func() bool { return len(list(t, st)) == 1 })
	r.SetPlugins("sha256:abcd", []replica.Plugin{{Name: "echo", SHA256: "ff", Tools: []string{"echo"}}})
	waitFor(t, "the new plugin set written without waiting an hour", func() bool {
		rs := list(t, st)
		return len(rs) == 1 && rs[0].PluginDigest == "sha256:abcd"
	})
	cancel()
	<-done
	if got := list(t, st); len(got) != 0 {
		t.Errorf("after Run returned: %v, want no record", got)
	}
}

// TestDeadReplicaExpires: a replica that stops heartbeating without saying
// goodbye (SIGKILL) disappears once its TTL passes.
func TestDeadReplicaExpires(t *testing.T) {
	st := openStore(t)
	dead := newRegistry(t, st, "dead", replica.Config{Interval: 50 * time.Millisecond, TTL: 200 * time.Millisecond})
	alive := newRegistry(t, st, "alive", replica.Config{Interval: time.Hour})
	if err := dead.Beat(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := alive.Beat(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead replica's record to expire", func() bool {
		return reflect.DeepEqual(ids(list(t, st)), []string{"alive"})
	})
}

// TestSystemNamespaceOnly: records live only in the reserved namespace, out
// of reach of any plugin name.
func TestSystemNamespaceOnly(t *testing.T) {
	st := openStore(t)
	r := newRegistry(t, st, "r1", replica.Config{})
	if err := r.Beat(t.Context()); err != nil {
		t.Fatal(err)
	}
	keys, err := st.KVList(t.Context(), store.SystemNamespace, "", "", 0)
	if err != nil || !reflect.DeepEqual(keys, []string{"replica/r1"}) {
		t.Fatalf("system namespace keys = %v, %v; want [replica/r1]", keys, err)
	}
	for _, plugin := range []string{"toolgate", "replica", "system"} {
		if keys, err := st.KVList(t.Context(), plugin, "", "", 0); err != nil || len(keys) != 0 {
			t.Errorf("plugin %q sees %v (%v)", plugin, keys, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	st := openStore(t)
	tests := []struct {
		name    string
		cfg     replica.Config
		invalid bool
	}{
		{"no store", replica.Config{Self: replica.Info{ID: "x"}}, false},
		{"empty id", replica.Config{Store: st}, true},
		{"id with dot-dot", replica.Config{Store: st, Self: replica.Info{ID: "a..b"}}, true},
		{"id with newline", replica.Config{Store: st, Self: replica.Info{ID: "a\nb"}}, true},
		{"ttl not above interval", replica.Config{Store: st, Self: replica.Info{ID: "x"}, Interval: time.Second, TTL: time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := replica.New(tt.cfg)
			if err == nil {
				t.Fatal("New accepted it")
			}
			if errors.Is(err, replica.ErrInvalidID) != tt.invalid {
				t.Errorf("New = %v; ErrInvalidID %v, want %v", err, errors.Is(err, replica.ErrInvalidID), tt.invalid)
			}
		})
	}
}

func TestDigests(t *testing.T) {
	rs := []replica.Info{{ID: "a", PluginDigest: "x"}, {ID: "b", PluginDigest: "y"}, {ID: "c", PluginDigest: "y"}, {ID: "d", PluginDigest: "w"}}
	got := replica.Digests(rs)
	want := []replica.DigestCount{{Digest: "y", Replicas: 2}, {Digest: "w", Replicas: 1}, {Digest: "x", Replicas: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Digests = %v, want %v", got, want)
	}
	if got := replica.Digests(nil); len(got) != 0 {
		t.Errorf("Digests(nil) = %v", got)
	}
}

// TestListSkipsUndecodable: a broken record does not hide the others.
func TestListSkipsUndecodable(t *testing.T) {
	st := openStore(t)
	if err := newRegistry(t, st, "good", replica.Config{}).Beat(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := st.KVPut(t.Context(), store.SystemNamespace, "replica/broken", []byte("{"), 0); err != nil {
		t.Fatal(err)
	}
	rs, err := replica.List(t.Context(), st)
	if err == nil || len(rs) != 1 || rs[0].ID != "good" {
		t.Errorf("List = %v, %v; want the good record and an error about the broken one", ids(rs), err)
	}
}
