package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/core/replica"
)

// pluginSetState is what /readyz and the replica registry say about the
// plugin set this replica serves.
type pluginSetState struct {
	mu         sync.Mutex
	digest     string // "" until a set is loaded
	generation uint64
	names      []string
	info       *prometheus.GaugeVec // toolgate_plugin_set_info{digest}
}

// readyPlugins is the "plugins" member of the /readyz body.
type readyPlugins struct {
	// Digest identifies the loaded plugin set (see pluginDigest); replicas
	// with the same digest serve the same tools to the same callers.
	Digest     string   `json:"digest"`
	Generation uint64   `json:"generation"`
	Names      []string `json:"names"`
}

func newPluginSetState(reg prometheus.Registerer) *pluginSetState {
	p := &pluginSetState{info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "toolgate_plugin_set_info",
		Help: "Always 1, labelled with the digest of the plugin set this replica serves; replicas whose digests differ serve different plugins or access rules.",
	}, []string{"digest"})}
	reg.MustRegister(p.info)
	return p
}

func (p *pluginSetState) set(snap plugin.Snapshot) (string, []replica.Plugin) {
	digest, plugins := pluginDigest(snap), replicaPlugins(snap)
	names := make([]string, len(plugins))
	for i, pl := range plugins {
		names[i] = pl.Name
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if snap.Generation < p.generation {
		return p.digest, nil // an older set reported late; keep the newer one
	}
	p.digest, p.generation, p.names = digest, snap.Generation, names
	p.info.Reset()
	p.info.WithLabelValues(digest).Set(1)
	return digest, plugins
}

func (p *pluginSetState) ready() readyPlugins {
	p.mu.Lock()
	defer p.mu.Unlock()
	return readyPlugins{Digest: p.digest, Generation: p.generation, Names: slices.Clone(p.names)}
}

// digestTool and digestPlugin are the canonical form a plugin set's digest
// is computed over.
type digestTool struct {
	Name           string   `json:"name"`
	Permissions    []string `json:"permissions"`
	AnyPermissions []string `json:"any_permissions"`
	Roles          []string `json:"roles"`
	Organizations  []string `json:"organizations"`
}

type digestPlugin struct {
	Name   string       `json:"name"`
	SHA256 string       `json:"sha256"`
	Tools  []digestTool `json:"tools"`
}

// pluginDigest returns "sha256:" and the hex SHA-256 of the plugin set's
// canonical form: its plugins sorted by name, each with its name, the
// SHA-256 of its .wasm file and its tools sorted by name, each tool with
// the access rules it is served with (sorted). Two replicas have the same
// digest exactly when they serve the same plugin files with the same tools
// to the same callers, whatever order they loaded them in; limits and
// grants (which change how a tool runs, not who may call it) are left out.
func pluginDigest(snap plugin.Snapshot) string {
	byPlugin := map[string][]digestTool{}
	for _, t := range snap.Tools {
		byPlugin[t.Plugin] = append(byPlugin[t.Plugin], digestTool{
			Name:           t.Name,
			Permissions:    sortedCopy(t.Rules.Permissions),
			AnyPermissions: sortedCopy(t.Rules.AnyPermissions),
			Roles:          sortedCopy(t.Rules.Roles),
			Organizations:  sortedCopy(t.Rules.Organizations),
		})
	}
	set := make([]digestPlugin, 0, len(snap.Plugins))
	for _, p := range snap.Plugins {
		tools := byPlugin[p.Name]
		slices.SortFunc(tools, func(a, b digestTool) int { return strings.Compare(a.Name, b.Name) })
		if tools == nil {
			tools = []digestTool{}
		}
		set = append(set, digestPlugin{Name: p.Name, SHA256: p.SHA256, Tools: tools})
	}
	slices.SortFunc(set, func(a, b digestPlugin) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.Marshal(set)
	if err != nil {
		panic("server: encode the plugin set: " + err.Error()) // strings and slices only: cannot fail
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// replicaPlugins is the plugin list the replica registry shows.
func replicaPlugins(snap plugin.Snapshot) []replica.Plugin {
	tools := map[string][]string{}
	for _, t := range snap.Tools {
		tools[t.Plugin] = append(tools[t.Plugin], t.Name)
	}
	out := make([]replica.Plugin, 0, len(snap.Plugins))
	for _, p := range snap.Plugins {
		ts := tools[p.Name]
		slices.Sort(ts)
		if ts == nil {
			ts = []string{}
		}
		out = append(out, replica.Plugin{Name: p.Name, Version: p.Manifest.Version, SHA256: p.SHA256, Tools: ts})
	}
	slices.SortFunc(out, func(a, b replica.Plugin) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	if out == nil {
		return []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// replicaID names this replica in the registry: server.replica_id, else
// the host name and the port it listens on (two replicas on one machine
// differ by port; in a container the host name is the container's).
func replicaID(configured, listen string) string {
	if configured != "" {
		return configured
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	if _, port, err := net.SplitHostPort(listen); err == nil {
		return net.JoinHostPort(host, port)
	}
	return host
}

// sessionIDPrefix is what starts this replica's MCP session IDs: its
// server.replica_id and a dot, so a load balancer can match "<id>." (a
// replica ID never holds a dot); nothing without a replica_id.
func sessionIDPrefix(replicaID string) string {
	if replicaID == "" {
		return ""
	}
	return replicaID + "."
}

// setupReplica builds this replica's registry record and follows the
// plugin host: every loaded set updates /readyz, the
// toolgate_plugin_set_info metric and the registry.
func (s *Server) setupReplica() error {
	reg, err := replica.New(replica.Config{
		Store: s.store,
		Self: replica.Info{
			ID:        replicaID(s.cfg.Server.ReplicaID, s.cfg.Server.Listen),
			URL:       s.cfg.Server.PublicURL,
			Addr:      s.cfg.Server.Listen,
			Version:   moduleVersion(),
			StartedAt: time.Now().UTC(),
		},
		Logger: s.log.With("component", "replica"),
	})
	if err != nil {
		return fmt.Errorf("replica registry: %w", err)
	}
	s.replica = reg
	s.pluginSet = newPluginSetState(s.reg)
	update := func(snap plugin.Snapshot) {
		if digest, plugins := s.pluginSet.set(snap); plugins != nil {
			reg.SetPlugins(digest, plugins)
		}
	}
	s.unsubPlugins = s.plugins.Subscribe(func(ev plugin.Event) { update(ev.Snapshot) })
	if s.plugins.Ready() {
		update(s.plugins.Tools())
	}
	return nil
}

// runReplica keeps this replica's record in the registry until ctx ends,
// then deletes it; the returned channel closes when that is done.
func (s *Server) runReplica(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.replica.Run(ctx)
	}()
	return done
}
