package plugin

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// DropInPolicy says what happens to a .wasm file in the drop-in folder that
// has no [plugins.<name>] entry in plugins.toml.
type DropInPolicy string

const (
	// DropInAllow loads such files with no grants (log only). The default.
	DropInAllow DropInPolicy = "allow"
	// DropInDeny ignores such files (and logs that it did).
	DropInDeny DropInPolicy = "deny"
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *DropInPolicy) UnmarshalText(b []byte) error {
	switch v := DropInPolicy(b); v {
	case DropInAllow, DropInDeny:
		*p = v
		return nil
	}
	return fmt.Errorf("drop_in must be %q or %q, not %q", DropInAllow, DropInDeny, b)
}

// Isolation says how instances are reused between calls.
type Isolation string

const (
	// IsolationPooled reuses warm instances, one call at a time each. The default.
	IsolationPooled Isolation = "pooled"
	// IsolationPerCall gives every call a fresh instance, closed afterwards.
	IsolationPerCall Isolation = "per-call"
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (i *Isolation) UnmarshalText(b []byte) error {
	switch v := Isolation(b); v {
	case IsolationPooled, IsolationPerCall:
		*i = v
		return nil
	}
	return fmt.Errorf("isolation must be %q or %q, not %q", IsolationPooled, IsolationPerCall, b)
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. \"30s\", \"1m\")", b)
	}
	if v <= 0 {
		return fmt.Errorf("duration %q must be positive", b)
	}
	*d = Duration(v)
	return nil
}

// Size is a byte count written with a binary unit ("64MiB", "512KiB", "1GiB")
// or as a plain number of bytes ("1048576").
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	for _, u := range sizeUnits {
		num, ok := strings.CutSuffix(str, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n <= 0 || n > (1<<42)/u.mult {
			break
		}
		*s = Size(n * u.mult)
		return nil
	}
	return fmt.Errorf("invalid size %q (want a positive number with KiB, MiB or GiB, e.g. \"64MiB\")", b)
}

// HostGrant is one entry of a plugin's http grant: a host the plugin may
// reach. "api.example.com" means https on port 443, "api.example.com:8443"
// https on that port, and "http://localhost:8080" plain http (the scheme
// must be written to allow http).
type HostGrant struct {
	Scheme string // "https" or "http"
	Host   string // lower-case host name or IP literal, without brackets
	Port   string // always set ("443", "80", or explicit)
}

// String renders the grant as its origin, e.g. "https://api.example.com:443".
func (g HostGrant) String() string {
	return g.Scheme + "://" + net.JoinHostPort(g.Host, g.Port)
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (g *HostGrant) UnmarshalText(b []byte) error {
	v, err := parseHostGrant(string(b))
	if err != nil {
		return err
	}
	*g = v
	return nil
}

func parseHostGrant(s string) (HostGrant, error) {
	raw := s
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return HostGrant{}, fmt.Errorf("invalid http host %q: %w", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return HostGrant{}, fmt.Errorf("invalid http host %q: scheme must be http or https", raw)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return HostGrant{}, fmt.Errorf("invalid http host %q: give only [scheme://]host[:port]", raw)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" || strings.ContainsAny(host, "*?%/ ") {
		return HostGrant{}, fmt.Errorf("invalid http host %q: need a host name or IP address (no wildcards)", raw)
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return HostGrant{}, fmt.Errorf("invalid http host %q: bad port", raw)
	}
	return HostGrant{Scheme: u.Scheme, Host: host, Port: port}, nil
}

// PluginsFile is the parsed plugins.toml. The zero value (no file) lets
// every file in the drop-in folder load with no grants.
type PluginsFile struct {
	// DropIn is the policy for .wasm files in the drop-in folder without an
	// entry; default DropInAllow.
	DropIn DropInPolicy `toml:"drop_in"`
	// Plugins maps a plugin's name to its entry.
	Plugins map[string]PluginEntry `toml:"plugins"`

	// Dir is the directory relative paths in entries are resolved against:
	// the directory of the plugins.toml file.
	Dir string `toml:"-"`
	// Name is the file name used in messages ("plugins.toml").
	Name string `toml:"-"`
}

// PluginEntry is one [plugins.<name>] table.
type PluginEntry struct {
	// Path is the .wasm file; relative to the plugins.toml directory. Empty
	// means <drop-in folder>/<name>.wasm.
	Path string `toml:"path"`
	// SHA256 pins the file's content (lower-case hex); empty means no pin.
	SHA256 string `toml:"sha256"`
	// Isolation is "pooled" (default) or "per-call".
	Isolation Isolation `toml:"isolation"`
	// PoolSize caps the warm instances and concurrent calls; default
	// Config.PoolSize.
	PoolSize int `toml:"pool_size"`
	// Memory caps linear memory; default 64MiB.
	Memory Size `toml:"memory"`
	// Timeout caps a call's wall time; default 30s.
	Timeout Duration `toml:"timeout"`
	// MaxOutput caps a call's CallResult JSON; default 8MiB.
	MaxOutput Size `toml:"max_output"`

	// HTTP lists hosts the plugin may reach (see HostGrant).
	HTTP []HostGrant `toml:"http"`
	// AllowPrivateHosts lets HTTP requests reach loopback, private,
	// link-local and other special-use addresses.
	AllowPrivateHosts bool `toml:"allow_private_hosts"`
	// KV grants the plugin's key/value namespace.
	KV bool `toml:"kv"`
	// Config holds named values the plugin may read.
	Config map[string]string `toml:"config"`
	// Secrets maps a secret's name to the environment variable holding it.
	Secrets map[string]string `toml:"secrets"`
	// Progress lets the plugin report progress.
	Progress bool `toml:"progress"`
	// ListTools lets the plugin read the server's tool list as the caller
	// sees it (the "tools" capability). The key is not "tools", which
	// holds the per-tool tables.
	ListTools bool `toml:"list_tools"`

	// Tools holds per-tool rules and limits.
	Tools map[string]ToolEntry `toml:"tools"`
}

// ToolEntry is one [plugins.<name>.tools.<tool>] table.
type ToolEntry struct {
	// Permissions, when present (even empty), replaces the permissions the
	// manifest asks for: the caller must hold all of them.
	Permissions *[]string `toml:"permissions"`
	// AnyPermissions: the caller must hold at least one of them.
	AnyPermissions []string `toml:"any_permissions"`
	// Roles: the caller's role must be one of them.
	Roles []string `toml:"roles"`
	// Organizations: the caller's organization must be one of them.
	Organizations []string `toml:"organizations"`
	// Timeout, Memory and MaxOutput override the plugin's limits for this tool.
	Timeout   Duration `toml:"timeout"`
	Memory    Size     `toml:"memory"`
	MaxOutput Size     `toml:"max_output"`
}

var (
	pluginNameRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	sha256RE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// ReadPluginsFile reads and parses a plugins.toml file. Relative paths in it
// resolve against the file's directory.
func ReadPluginsFile(path string) (*PluginsFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plugins file: %w", err)
	}
	return ParsePluginsFile(data, path)
}

// ParsePluginsFile parses plugins.toml content strictly: unknown keys, wrong
// types and invalid values are errors naming the key and, where the TOML
// decoder knows it, the line. name is the file's path, used in messages and
// to resolve relative paths.
func ParsePluginsFile(data []byte, name string) (*PluginsFile, error) {
	f := &PluginsFile{Name: name, Dir: filepath.Dir(name)}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		return nil, describeTOMLError(name, err)
	}
	if f.DropIn == "" {
		f.DropIn = DropInAllow
	}
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

func describeTOMLError(name string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		msgs := make([]string, 0, len(strict.Errors))
		for _, e := range strict.Errors {
			row, col := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d:%d: unknown key %q", name, row, col, strings.Join(e.Key(), ".")))
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		key := strings.Join(de.Key(), ".")
		if key != "" {
			return fmt.Errorf("%s:%d:%d: key %q: %s", name, row, col, key, de.Error())
		}
		return fmt.Errorf("%s:%d:%d: %s", name, row, col, de.Error())
	}
	return fmt.Errorf("%s: %w", name, err)
}

func (f *PluginsFile) validate() error {
	names := make([]string, 0, len(f.Plugins))
	for n := range f.Plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := f.Plugins[n]
		where := fmt.Sprintf("[plugins.%s]", n)
		if !pluginNameRE.MatchString(n) {
			return fmt.Errorf("%s: plugin name must be 1-64 characters of a-z, 0-9, '_' and '-'", where)
		}
		if e.SHA256 != "" && !sha256RE.MatchString(e.SHA256) {
			return fmt.Errorf("%s: sha256 must be 64 lower-case hex digits", where)
		}
		if e.PoolSize < 0 || e.PoolSize > 1024 {
			return fmt.Errorf("%s: pool_size must be between 1 and 1024", where)
		}
		if e.Memory != 0 && (e.Memory < minMemory || e.Memory > maxMemory) {
			return fmt.Errorf("%s: memory must be between 1MiB and 4GiB", where)
		}
		if e.MaxOutput > maxOutputCap {
			return fmt.Errorf("%s: max_output must be at most 256MiB", where)
		}
		for cn := range e.Config {
			if cn == "" {
				return fmt.Errorf("%s: config names must not be empty", where)
			}
		}
		for sn, env := range e.Secrets {
			if sn == "" {
				return fmt.Errorf("%s: secret names must not be empty", where)
			}
			if !envNameRE.MatchString(env) {
				return fmt.Errorf("%s: secret %q: %q is not an environment variable name", where, sn, env)
			}
		}
		for tn, t := range e.Tools {
			tw := fmt.Sprintf("[plugins.%s.tools.%s]", n, tn)
			if err := validateToolName(tn); err != nil {
				return fmt.Errorf("%s: %w", tw, err)
			}
			if t.Memory != 0 && (t.Memory < minMemory || t.Memory > maxMemory) {
				return fmt.Errorf("%s: memory must be between 1MiB and 4GiB", tw)
			}
			if t.MaxOutput > maxOutputCap {
				return fmt.Errorf("%s: max_output must be at most 256MiB", tw)
			}
			lists := map[string][]string{"any_permissions": t.AnyPermissions, "roles": t.Roles, "organizations": t.Organizations}
			if t.Permissions != nil {
				lists["permissions"] = *t.Permissions
			}
			for key, l := range lists {
				for _, v := range l {
					if strings.TrimSpace(v) == "" {
						return fmt.Errorf("%s: %s must not contain empty strings", tw, key)
					}
				}
			}
		}
	}
	return nil
}

const (
	minMemory    = 1 << 20
	maxMemory    = 4 << 30
	maxOutputCap = 256 << 20
)
