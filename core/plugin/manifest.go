package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/toolgate/toolgate/sdk/abi"
)

// validateToolName applies the MCP tool-name rules (go-sdk v1.8.0
// mcp/tool.go validateToolName): 1-128 characters of A-Z, a-z, 0-9, '_',
// '-' and '.'.
func validateToolName(name string) error {
	if name == "" {
		return errors.New("tool name cannot be empty")
	}
	if len(name) > abi.MaxToolNameLen {
		return fmt.Errorf("tool name exceeds maximum length of %d characters (current: %d)", abi.MaxToolNameLen, len(name))
	}
	var bad []string
	for _, r := range name {
		ok := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' || r == '-' || r == '.'
		if q := fmt.Sprintf("%q", string(r)); !ok && !slices.Contains(bad, q) {
			bad = append(bad, q)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("tool name %q contains invalid characters: %s", name, strings.Join(bad, ", "))
	}
	return nil
}

// decodeManifest parses and validates manifest JSON read from a guest.
func decodeManifest(data []byte) (abi.Manifest, error) {
	var m abi.Manifest
	if len(data) > abi.MaxManifestBytes {
		return m, fmt.Errorf("manifest is %d bytes, over the %d byte limit", len(data), abi.MaxManifestBytes)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("manifest is not valid JSON: %w", err)
	}
	return m, validateManifest(m)
}

// validateManifest checks everything about a manifest that does not depend
// on plugins.toml or on other plugins.
func validateManifest(m abi.Manifest) error {
	if m.ABI != abi.Version {
		return fmt.Errorf("manifest says ABI version %d, but this host speaks ABI version %d", m.ABI, abi.Version)
	}
	if !pluginNameRE.MatchString(m.Name) {
		return fmt.Errorf("manifest plugin name %q must be 1-64 characters of a-z, 0-9, '_' and '-'", m.Name)
	}
	if strings.TrimSpace(m.Version) == "" {
		return errors.New("manifest has no version")
	}
	if len(m.Tools) == 0 {
		return errors.New("manifest declares no tools")
	}
	if len(m.Tools) > abi.MaxToolsPerPlugin {
		return fmt.Errorf("manifest declares %d tools, over the limit of %d", len(m.Tools), abi.MaxToolsPerPlugin)
	}
	seen := make(map[string]bool, len(m.Tools))
	for i, t := range m.Tools {
		if err := validateToolName(t.Name); err != nil {
			return fmt.Errorf("tool %d: %w", i, err)
		}
		if seen[t.Name] {
			return fmt.Errorf("tool %q is declared twice", t.Name)
		}
		seen[t.Name] = true
		if strings.TrimSpace(t.Description) == "" {
			return fmt.Errorf("tool %q has no description", t.Name)
		}
		if err := checkObjectSchema(t.InputSchema); err != nil {
			return fmt.Errorf("tool %q input_schema: %w", t.Name, err)
		}
		if len(t.OutputSchema) > 0 {
			if err := checkObjectSchema(t.OutputSchema); err != nil {
				return fmt.Errorf("tool %q output_schema: %w", t.Name, err)
			}
		}
		for _, p := range t.Permissions {
			if strings.TrimSpace(p) == "" {
				return fmt.Errorf("tool %q lists an empty permission", t.Name)
			}
		}
	}
	c := m.Capabilities
	for _, h := range c.HTTP {
		if _, err := parseHostGrant(h); err != nil {
			return fmt.Errorf("capabilities: %w", err)
		}
	}
	for _, n := range append(slices.Clone(c.Config), c.Secrets...) {
		if strings.TrimSpace(n) == "" {
			return errors.New("capabilities: empty config or secret name")
		}
	}
	return nil
}

func checkObjectSchema(raw json.RawMessage) error {
	if len(raw) == 0 {
		return errors.New("missing")
	}
	var s struct {
		Type any `json:"type"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if s.Type != "object" {
		return fmt.Errorf(`type must be "object", not %v`, s.Type)
	}
	return nil
}

// hostGranted reports whether a host the manifest asks for is covered by a
// grant. The manifest names a host, optionally with a scheme and port; the
// grant decides the rest. "api.example.com" in a manifest is covered by
// "api.example.com", "api.example.com:8443" or "http://api.example.com".
func hostGranted(asked string, grants []HostGrant) bool {
	a, err := parseHostGrant(asked)
	if err != nil {
		return false
	}
	explicitScheme := strings.Contains(asked, "://")
	explicitPort := hasExplicitPort(asked)
	for _, g := range grants {
		if g.Host != a.Host {
			continue
		}
		if explicitScheme && g.Scheme != a.Scheme {
			continue
		}
		if explicitPort && g.Port != a.Port {
			continue
		}
		return true
	}
	return false
}

func hasExplicitPort(s string) bool {
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if strings.HasPrefix(s, "[") {
		return strings.Contains(s, "]:")
	}
	return strings.Contains(s, ":")
}

// checkGrants refuses a plugin that asks for a capability plugins.toml does
// not grant. The message names the plugin, its file, the capability and the
// plugins.toml line that would grant it.
func checkGrants(name, file, tomlName string, m abi.Manifest, e PluginEntry) error {
	refuse := func(what, line string) error {
		return fmt.Errorf("plugin %q (%s) asks for %s, which is not granted; add  %s  under [plugins.%s] in %s",
			name, file, what, line, name, tomlName)
	}
	c := m.Capabilities
	for _, h := range c.HTTP {
		if !hostGranted(h, e.HTTP) {
			return refuse(fmt.Sprintf("http host %q", h), fmt.Sprintf("http = [%q]", h))
		}
	}
	if c.KV && !e.KV {
		return refuse("the kv store", "kv = true")
	}
	for _, n := range c.Config {
		if _, ok := e.Config[n]; !ok {
			return refuse(fmt.Sprintf("config value %q", n), fmt.Sprintf("config = { %s = \"...\" }", tomlKey(n)))
		}
	}
	for _, n := range c.Secrets {
		if _, ok := e.Secrets[n]; !ok {
			return refuse(fmt.Sprintf("secret %q", n), fmt.Sprintf("secrets = { %s = \"ENV_VAR_NAME\" }", tomlKey(n)))
		}
	}
	if c.Progress && !e.Progress {
		return refuse("progress reporting", "progress = true")
	}
	if c.Tools && !e.ListTools {
		return refuse("the server's tool list", "list_tools = true")
	}
	return nil
}

func tomlKey(s string) string {
	for _, r := range s {
		if !((r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' || r == '-') {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

// grants are what a plugin may use at call time: what its manifest asks for
// and plugins.toml grants, both.
type grants struct {
	http     []HostGrant
	kv       bool
	progress bool
	tools    bool
	config   map[string]string // name -> value
	secrets  map[string]string // name -> environment variable
}

// effectiveGrants intersects a manifest's capabilities with an entry's
// grants. An http grant counts when some host the manifest names covers it.
func effectiveGrants(m abi.Manifest, e PluginEntry) grants {
	c := m.Capabilities
	g := grants{kv: c.KV && e.KV, progress: c.Progress && e.Progress, tools: c.Tools && e.ListTools,
		config: map[string]string{}, secrets: map[string]string{}}
	for _, hg := range e.HTTP {
		for _, asked := range c.HTTP {
			if hostGranted(asked, []HostGrant{hg}) {
				g.http = append(g.http, hg)
				break
			}
		}
	}
	for _, n := range c.Config {
		if v, ok := e.Config[n]; ok {
			g.config[n] = v
		}
	}
	for _, n := range c.Secrets {
		if env, ok := e.Secrets[n]; ok {
			g.secrets[n] = env
		}
	}
	return g
}
