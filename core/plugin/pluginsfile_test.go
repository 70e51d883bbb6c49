package plugin

import (
	"strings"
	"testing"
	"time"
)

func TestParsePluginsFile(t *testing.T) {
	const full = `
drop_in = "deny"

[plugins.weather]
path = "build/weather.wasm"
sha256 = "` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"
isolation = "per-call"
pool_size = 4
memory = "32MiB"
timeout = "10s"
max_output = "1MiB"
http = ["api.weather.gov", "http://localhost:8080", "[::1]:9000"]
allow_private_hosts = true
kv = true
progress = true
config = { units = "metric" }
secrets = { api_key = "WEATHER_API_KEY" }

[plugins.weather.tools.forecast]
permissions = []
any_permissions = ["weather:read", "admin"]
roles = ["member"]
organizations = ["org_1"]
timeout = "2s"
memory = "16MiB"
max_output = "512KiB"
`
	f, err := ParsePluginsFile([]byte(full), "/etc/toolgate/plugins.toml")
	if err != nil {
		t.Fatal(err)
	}
	w := f.Plugins["weather"]
	if f.DropIn != DropInDeny || f.Dir != "/etc/toolgate" || w.Path != "build/weather.wasm" || w.Isolation != IsolationPerCall ||
		w.PoolSize != 4 || w.Memory != 32<<20 || time.Duration(w.Timeout) != 10*time.Second || w.MaxOutput != 1<<20 ||
		!w.AllowPrivateHosts || !w.KV || !w.Progress || w.Config["units"] != "metric" || w.Secrets["api_key"] != "WEATHER_API_KEY" {
		t.Fatalf("parsed = %+v", f)
	}
	wantHosts := []string{"https://api.weather.gov:443", "http://localhost:8080", "https://[::1]:9000"}
	for i, g := range w.HTTP {
		if g.String() != wantHosts[i] {
			t.Errorf("http[%d] = %s, want %s", i, g, wantHosts[i])
		}
	}
	fc := w.Tools["forecast"]
	if fc.Permissions == nil || len(*fc.Permissions) != 0 || len(fc.AnyPermissions) != 2 || fc.Roles[0] != "member" ||
		fc.Organizations[0] != "org_1" || time.Duration(fc.Timeout) != 2*time.Second || fc.Memory != 16<<20 || fc.MaxOutput != 512<<10 {
		t.Fatalf("tool = %+v", fc)
	}

	empty, err := ParsePluginsFile(nil, "plugins.toml")
	if err != nil || empty.DropIn != DropInAllow || len(empty.Plugins) != 0 {
		t.Fatalf("empty file: %+v, %v", empty, err)
	}
}

func TestParsePluginsFileErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unknown top-level key", "colour = 1\n", `plugins.toml:1:1: unknown key "colour"`},
		{"unknown plugin key", "[plugins.a]\nkv = true\nhttps = [\"x\"]\n", `plugins.toml:3:1: unknown key "plugins.a.https"`},
		{"unknown tool key", "[plugins.a.tools.t]\nrole = [\"x\"]\n", `plugins.toml:2:1: unknown key "plugins.a.tools.t.role"`},
		{"bad drop_in", "drop_in = \"maybe\"\n", `drop_in must be "allow" or "deny", not "maybe"`},
		{"bad isolation", "[plugins.a]\nisolation = \"solo\"\n", `plugins.toml:2:`},
		{"bad isolation message", "[plugins.a]\nisolation = \"solo\"\n", `isolation must be "pooled" or "per-call", not "solo"`},
		{"bad duration", "[plugins.a]\ntimeout = \"soon\"\n", `invalid duration "soon"`},
		{"negative duration", "[plugins.a]\ntimeout = \"-1s\"\n", `duration "-1s" must be positive`},
		{"bad size", "[plugins.a]\nmemory = \"lots\"\n", `invalid size "lots"`},
		{"size too small", "[plugins.a]\nmemory = \"1KiB\"\n", `[plugins.a]: memory must be between 1MiB and 4GiB`},
		{"bad host", "[plugins.a]\nhttp = [\"ftp://x\"]\n", `invalid http host "ftp://x": scheme must be http or https`},
		{"wildcard host", "[plugins.a]\nhttp = [\"*.example.com\"]\n", `invalid http host "*.example.com"`},
		{"host with path", "[plugins.a]\nhttp = [\"example.com/api\"]\n", `give only [scheme://]host[:port]`},
		{"wrong type", "[plugins.a]\nkv = \"yes\"\n", `plugins.toml:2:`},
		{"bad plugin name", "[plugins.Weather]\n", `[plugins.Weather]: plugin name must be 1-64 characters`},
		{"bad sha", "[plugins.a]\nsha256 = \"abc\"\n", `[plugins.a]: sha256 must be 64 lower-case hex digits`},
		{"bad pool size", "[plugins.a]\npool_size = -1\n", `pool_size must be between 1 and 1024`},
		{"bad env name", "[plugins.a]\nsecrets = { k = \"not an env\" }\n", `secret "k": "not an env" is not an environment variable name`},
		{"bad tool name", "[plugins.a.tools.\"a b\"]\n", `[plugins.a.tools.a b]: tool name "a b" contains invalid characters: " "`},
		{"empty role", "[plugins.a.tools.t]\nroles = [\"\"]\n", `roles must not contain empty strings`},
		{"syntax", "[plugins.a\n", `plugins.toml:1:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePluginsFile([]byte(tt.in), "plugins.toml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func FuzzParsePluginsFile(f *testing.F) {
	for _, seed := range []string{
		"",
		"drop_in = \"allow\"\n",
		"[plugins.add]\n",
		"[plugins.w]\nhttp = [\"api.example.com\", \"http://localhost:8080\"]\nkv = true\nmemory = \"64MiB\"\ntimeout = \"30s\"\n",
		"[plugins.w.tools.t]\npermissions = [\"a\"]\nroles = [\"admin\"]\n",
		"[plugins.w]\nsecrets = { k = \"ENV\" }\nconfig = { a = \"b\" }\n",
		"[plugins.a\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := ParsePluginsFile(data, "plugins.toml")
		if err != nil {
			return
		}
		if pf.DropIn != DropInAllow && pf.DropIn != DropInDeny {
			t.Fatalf("drop_in %q accepted", pf.DropIn)
		}
		for name, e := range pf.Plugins {
			if !pluginNameRE.MatchString(name) {
				t.Fatalf("plugin name %q accepted", name)
			}
			if e.Memory != 0 && (e.Memory < minMemory || e.Memory > maxMemory) {
				t.Fatalf("memory %d accepted", e.Memory)
			}
			if e.Timeout < 0 || e.PoolSize < 0 {
				t.Fatalf("negative limit accepted: %+v", e)
			}
			for _, g := range e.HTTP {
				if g.Host == "" || (g.Scheme != "http" && g.Scheme != "https") || g.Port == "" {
					t.Fatalf("host grant %+v accepted", g)
				}
			}
			for tn := range e.Tools {
				if err := validateToolName(tn); err != nil {
					t.Fatalf("tool name %q accepted", tn)
				}
			}
		}
	})
}

// TestRepoPluginsFile keeps the operator's plugins.toml at the repository
// root parseable.
func TestRepoPluginsFile(t *testing.T) {
	f, err := ReadPluginsFile("../../plugins.toml")
	if err != nil {
		t.Fatal(err)
	}
	add, ok := f.Plugins["add"]
	if !ok || time.Duration(add.Tools["add"].Timeout) != 5*time.Second || add.Memory != 64<<20 {
		t.Fatalf("plugins.toml: %+v", f.Plugins)
	}
}
