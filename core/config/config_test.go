package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeFile writes a toolgate.toml into a fresh directory and returns its path.
func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "toolgate.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultsAreValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
	if c.Production() {
		t.Error("Default().Production() = true, want false")
	}
}

// plugins.idle_instance_ttl takes 0 (keep idle instances) as well as a
// duration in its range, from the file and the environment.
func TestIdleInstanceTTL(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		environ []string
		want    time.Duration
	}{
		{name: "default", want: 30 * time.Second},
		{name: "zero keeps instances", file: "[plugins]\nidle_instance_ttl = \"0s\"\n", want: 0},
		{name: "from the environment", environ: []string{"TOOLGATE_PLUGINS_IDLE_INSTANCE_TTL=2m"}, want: 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Load(Options{File: writeFile(t, tt.file), Environ: tt.environ})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := l.Config.Plugins.IdleInstanceTTL; got != tt.want {
				t.Errorf("plugins.idle_instance_ttl = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
[log]
level = "warn"
format = "json"
[server]
shutdown_timeout = "20s"
idle_timeout = "30s"
`)
	tests := []struct {
		name      string
		environ   []string
		overrides []Override
		wantLevel string
		wantSrc   string
		wantTO    time.Duration
	}{
		{name: "file over default", wantLevel: "warn", wantSrc: file, wantTO: 20 * time.Second},
		{name: "env over file", environ: []string{"TOOLGATE_LOG_LEVEL=error", "TOOLGATE_SERVER_SHUTDOWN_TIMEOUT=25s"}, wantLevel: "error", wantSrc: "$TOOLGATE_LOG_LEVEL", wantTO: 25 * time.Second},
		{name: "flag over env", environ: []string{"TOOLGATE_LOG_LEVEL=error"}, overrides: []Override{{Key: "log.level", Value: "debug", Source: "flag -log-level"}}, wantLevel: "debug", wantSrc: "flag -log-level", wantTO: 20 * time.Second},
		{name: "empty env counts as unset", environ: []string{"TOOLGATE_LOG_LEVEL="}, wantLevel: "warn", wantSrc: file, wantTO: 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Load(Options{File: file, Environ: append([]string{}, tt.environ...), Overrides: tt.overrides})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := l.Config.Log.Level; got != tt.wantLevel {
				t.Errorf("log.level = %q, want %q", got, tt.wantLevel)
			}
			if got := l.Sources["log.level"]; got != tt.wantSrc {
				t.Errorf("source of log.level = %q, want %q", got, tt.wantSrc)
			}
			if got := l.Config.Server.ShutdownTimeout; got != tt.wantTO {
				t.Errorf("server.shutdown_timeout = %v, want %v", got, tt.wantTO)
			}
			// Untouched by env and flags: the file's value and the default.
			if got := l.Config.Log.Format; got != "json" {
				t.Errorf("log.format = %q, want json from the file", got)
			}
			if got, want := l.Config.Server.ReadHeaderTimeout, Default().Server.ReadHeaderTimeout; got != want {
				t.Errorf("server.read_header_timeout = %v, want default %v", got, want)
			}
			if got := l.File; got != file {
				t.Errorf("File = %q, want %q", got, file)
			}
		})
	}
}

func TestConfigFileResolution(t *testing.T) {
	named := writeFile(t, "[log]\nlevel = \"debug\"\n")
	t.Run("TOOLGATE_CONFIG names the file", func(t *testing.T) {
		l, err := Load(Options{Environ: []string{"TOOLGATE_CONFIG=" + named}})
		if err != nil {
			t.Fatal(err)
		}
		if l.Config.Log.Level != "debug" || l.File != named {
			t.Errorf("got level %q from %q, want debug from %q", l.Config.Log.Level, l.File, named)
		}
	})
	t.Run("an explicit missing file is an error", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope.toml")
		_, err := Load(Options{File: missing, Environ: []string{}})
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Fatalf("Load(missing) = %v, want an error naming %s", err, missing)
		}
	})
	t.Run("the default file is optional", func(t *testing.T) {
		t.Chdir(t.TempDir())
		l, err := Load(Options{Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		if l.File != "" {
			t.Errorf("File = %q, want none", l.File)
		}
	})
	t.Run("the default file is read when present", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		if err := os.WriteFile(DefaultFile, []byte("[log]\nformat = \"text\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Load(Options{Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		if l.Config.Log.Format != "text" || l.File != DefaultFile {
			t.Errorf("got format %q from %q, want text from %s", l.Config.Log.Format, l.File, DefaultFile)
		}
	})
}

func TestEnvMapping(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"WORKOS_CLIENT_ID", "auth.workos_client_id"},
		{"WORKOS_CLIENT_SECRET", "auth.workos_api_key"},
		{"COOKIE_ENCRYPTION_KEY", "auth.cookie_encryption_key"},
		{"WORKOS_WEBHOOK_SECRET", "auth.workos_webhook_secret"},
		{"TOOLGATE_SERVER_PUBLIC_URL", "server.public_url"},
		{"TOOLGATE_SERVER_LISTEN", "server.listen"},
		{"TOOLGATE_SERVER_MAX_BODY_BYTES", "server.max_body_bytes"},
		{"TOOLGATE_STORE_ENCRYPTION_KEY", "store.encryption_key"},
		{"TOOLGATE_AUTH_ACCESS_TOKEN_TTL", "auth.access_token_ttl"},
		{"TOOLGATE_PLUGINS_POOL_SIZE", "plugins.pool_size"},
		{"TOOLGATE_LOG_LEVEL", "log.level"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			got, ok := envKey(tt.env)
			if !ok || got != tt.want {
				t.Errorf("envKey(%s) = %q, %v; want %q", tt.env, got, ok, tt.want)
			}
		})
	}
	for _, name := range []string{"TOOLGATE_SERVER", "TOOLGATE_SERVER_PUBLIC", "TOOLGATE_CONFIG", "TOOLGATE_SERVER_PUBLIC_URL_X", "toolgate_log_level", "PATH"} {
		if got, ok := envKey(name); ok {
			t.Errorf("envKey(%s) = %q, want no key", name, got)
		}
	}
	// Every key is reachable by exactly one TOOLGATE_ name.
	for _, key := range Keys() {
		name := EnvName(key)
		if got, ok := envKey(name); !ok || got != key {
			t.Errorf("EnvName(%s) = %s, which maps back to %q", key, name, got)
		}
	}
}

func TestEnvValues(t *testing.T) {
	l, err := Load(Options{File: writeFile(t, ""), Environ: []string{
		"TOOLGATE_SERVER_ALLOWED_HOSTS= a.example.com , b.example.com:8443,",
		"TOOLGATE_PLUGINS_WATCH=false",
		"TOOLGATE_PLUGINS_POOL_SIZE=8",
		"TOOLGATE_AUTH_CODE_TTL=2m",
		"TOOLGATE_LOG_LEVLE=debug",
		"TOOLGATE_CONFIG=",
		"HOME=/root",
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := l.Config
	if want, got := []string{"a.example.com", "b.example.com:8443"}, c.Server.AllowedHosts; !reflect.DeepEqual(want, got) {
		t.Errorf("allowed_hosts = %#v, want %#v", got, want)
	}
	if c.Plugins.Watch || c.Plugins.PoolSize != 8 || c.Auth.CodeTTL != 2*time.Minute {
		t.Errorf("got watch=%v pool_size=%d code_ttl=%v, want false 8 2m", c.Plugins.Watch, c.Plugins.PoolSize, c.Auth.CodeTTL)
	}
	want := []string{"ignoring unknown environment variable TOOLGATE_LOG_LEVLE (did you mean TOOLGATE_LOG_LEVEL?)"}
	if want, got := want, l.Warnings; !reflect.DeepEqual(want, got) {
		t.Errorf("warnings = %#v, want %#v", got, want)
	}
}

// productionEnv is a complete, valid production environment.
var productionEnv = []string{
	"WORKOS_CLIENT_ID=client_01TEST",
	"WORKOS_CLIENT_SECRET=sk_test_supersecretvalue_123456",
	"COOKIE_ENCRYPTION_KEY=cookie-key-0123456789abcdef0123456789",
	"TOOLGATE_SERVER_PUBLIC_URL=https://mcp.example.com",
	"TOOLGATE_SERVER_LISTEN=0.0.0.0:8788",
}

func TestProduction(t *testing.T) {
	l, err := Load(Options{File: writeFile(t, ""), Environ: slices.Clone(productionEnv)})
	if err != nil {
		t.Fatal(err)
	}
	c := l.Config
	if !c.Production() {
		t.Error("Production() = false with WORKOS_CLIENT_ID set")
	}
	if c.Auth.WorkOSClientID != "client_01TEST" || c.Auth.WorkOSAPIKey.Reveal() != "sk_test_supersecretvalue_123456" || c.Auth.CookieEncryptionKey.Reveal() != "cookie-key-0123456789abcdef0123456789" {
		t.Errorf("original environment names not mapped: %+v", c.Auth)
	}
	if l.Sources["auth.workos_api_key"] != "$WORKOS_CLIENT_SECRET" {
		t.Errorf("source of auth.workos_api_key = %q", l.Sources["auth.workos_api_key"])
	}
}

func without(env []string, name string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
}

func with(env []string, kv ...string) []string { return append(slices.Clone(env), kv...) }

// TestErrors checks that each kind of problem stops loading with exactly
// one line naming the source, the key, the value and what is allowed.
func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		environ []string
		flags   []Override
		want    string // the whole message, with FILE for the file path
	}{
		{name: "enum", file: "[log]\nlevel = \"loud\"\n",
			want: `config: FILE: log.level = "loud": must be one of debug, info, warn, error`},
		{name: "unknown key with suggestion", file: "[server]\nlisen = \"127.0.0.1:1\"\n",
			want: `config: FILE: unknown key "server.lisen" (did you mean "server.listen"?)`},
		{name: "unknown key far from any", file: "[frobnicate]\nwidgets = 3\n",
			want: `config: FILE: unknown key "frobnicate.widgets"`},
		{name: "unknown dev user key", file: "[[auth.dev_users]]\nemial = \"a@b.c\"\n",
			want: `config: FILE: unknown key "auth.dev_users[0].emial" (did you mean "auth.dev_users[0].email"?)`},
		{name: "wrong type int", file: "[server]\nmax_body_bytes = \"big\"\n",
			want: `config: FILE: server.max_body_bytes = "big": must be an integer`},
		{name: "wrong type bool", file: "[store]\nsync_writes = 1\n",
			want: `config: FILE: store.sync_writes = 1: must be true or false`},
		{name: "duration not a string", file: "[server]\nidle_timeout = 30\n",
			want: `config: FILE: server.idle_timeout = 30: must be a duration such as "90s", "15m" or "1h30m"`},
		{name: "bad duration", file: "[server]\nidle_timeout = \"soon\"\n",
			want: `config: FILE: server.idle_timeout = "soon": must be a duration such as "90s", "15m" or "1h30m"`},
		{name: "section as scalar", file: "server = 3\n",
			want: `config: FILE: server = 3: must be a table ([server])`},
		{name: "scalar as table", file: "[log.level]\nx = 1\n",
			want: `config: FILE: log.level = {...}: must be a string`},
		{name: "out of range", file: "[server]\nmax_header_bytes = 10\n",
			want: `config: FILE: server.max_header_bytes = 10: must be between 4096 and 16777216 (16 MiB)`},
		{name: "trusted proxy not an address", file: "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.internal\"]\n",
			want: `config: FILE: server.trusted_proxies = "proxy.internal": each entry must be an IP address or a CIDR prefix, for example "10.0.0.0/8"`},
		{name: "trusted proxy bad prefix", file: "[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
			want: `config: FILE: server.trusted_proxies = "10.0.0.0/33": each entry must be an IP address or a CIDR prefix, for example "10.0.0.0/8"`},
		{name: "negative rate limit", file: "[auth]\nrate_limit = -1\n",
			want: `config: FILE: auth.rate_limit = -1: must be between 0 and 100000 requests a minute (0 turns the limit off)`},
		{name: "zero burst", file: "[auth]\nrate_limit_burst = 0\n",
			want: `config: FILE: auth.rate_limit_burst = 0: must be between 1 and 10000`},
		{name: "queue too long", file: "[plugins]\nmax_queue = 100001\n",
			want: `config: FILE: plugins.max_queue = 100001: must be between 0 and 100000 (0: no call waits)`},
		{name: "queue timeout zero", file: "[plugins]\nqueue_timeout = \"0s\"\n",
			want: `config: FILE: plugins.queue_timeout = "0s": must be between 1ms and 10m`},
		{name: "replica id with a dot", file: "[server]\nreplica_id = \"a.b\"\n",
			want: `config: FILE: server.replica_id = "a.b": must be 1 to 64 characters of a-z, 0-9, '-' and '_' (it starts MCP session IDs)`},
		{name: "pprof without the admin endpoint", file: "[server]\npprof = true\nadmin_listen = \"\"\n",
			want: `config: FILE: server.pprof = true: needs server.admin_listen: the profiles are served on the admin endpoint only`},
		{name: "idle instance ttl too short", file: "[plugins]\nidle_instance_ttl = \"500ms\"\n",
			want: `config: FILE: plugins.idle_instance_ttl = "500ms": must be 0 (keep idle instances) or between 1s and 24h`},
		{name: "negative tool call rate", file: "[mcp]\ntool_calls_per_minute = -5\n",
			want: `config: FILE: mcp.tool_calls_per_minute = -5: must be between 0 and 1000000 (0 turns the limit off)`},
		{name: "tool call burst too big", file: "[mcp]\ntool_call_burst = 100001\n",
			want: `config: FILE: mcp.tool_call_burst = 100001: must be between 1 and 100000`},
		{name: "duration out of range", file: "[auth]\ncode_ttl = \"1h\"\n",
			want: `config: FILE: auth.code_ttl = "1h": must be between 10s and 10m`},
		{name: "public url with query", file: "[server]\npublic_url = \"http://localhost:8788/?x=1\"\n",
			want: `config: FILE: server.public_url = "http://localhost:8788/?x=1": must not have user information, a query or a fragment`},
		{name: "public url relative", environ: []string{"TOOLGATE_SERVER_PUBLIC_URL=/mcp"},
			want: `config: $TOOLGATE_SERVER_PUBLIC_URL: server.public_url = "/mcp": must be an absolute http or https URL, for example "https://mcp.example.com"`},
		{name: "env wrong type", environ: []string{"TOOLGATE_PLUGINS_POOL_SIZE=many"},
			want: `config: $TOOLGATE_PLUGINS_POOL_SIZE: plugins.pool_size = "many": must be an integer`},
		{name: "flag out of range", flags: []Override{{Key: "plugins.pool_size", Value: "5000", Source: "flag -pool-size"}},
			want: `config: flag -pool-size: plugins.pool_size = 5000: must be between 0 and 1024 (0 means GOMAXPROCS)`},
		{name: "dev mode public listen", environ: []string{"TOOLGATE_SERVER_LISTEN=0.0.0.0:8788"},
			want: `config: $TOOLGATE_SERVER_LISTEN: server.listen = "0.0.0.0:8788": must be a loopback address (127.0.0.1, [::1] or localhost) in development mode; set WORKOS_CLIENT_ID, WORKOS_CLIENT_SECRET and COOKIE_ENCRYPTION_KEY to listen on other addresses`},
		{name: "admin listen public", file: "[server]\nadmin_listen = \"0.0.0.0:8789\"\n",
			want: `config: FILE: server.admin_listen = "0.0.0.0:8789": must be a loopback address (127.0.0.1, [::1] or localhost): the admin endpoint is for operators on this machine`},
		{name: "admin listen not host port", environ: []string{"TOOLGATE_SERVER_ADMIN_LISTEN=8789"},
			want: `config: $TOOLGATE_SERVER_ADMIN_LISTEN: server.admin_listen = "8789": must be host:port, for example "127.0.0.1:8789", or empty to disable the admin endpoint`},
		{name: "admin listen same as listen", file: "[server]\nadmin_listen = \"127.0.0.1:8788\"\n",
			want: `config: FILE: server.admin_listen = "127.0.0.1:8788": must differ from server.listen`},
		{name: "sign-in ttl out of range", file: "[auth]\nsign_in_ttl = \"2h\"\n",
			want: `config: FILE: auth.sign_in_ttl = "2h": must be between 1m and 1h`},
		{name: "token cache ttl out of range", environ: []string{"TOOLGATE_AUTH_TOKEN_CACHE_TTL=0s"},
			want: `config: $TOOLGATE_AUTH_TOKEN_CACHE_TTL: auth.token_cache_ttl = "0s": must be between 1s and 1h`},
		{name: "authkit mode in development", file: "[auth]\nmode = \"authkit\"\n",
			want: `config: FILE: auth.mode = "authkit": needs WorkOS (set WORKOS_CLIENT_ID, WORKOS_CLIENT_SECRET and auth.authkit_domain): the development AuthKit only works with auth.mode = "proxy"`},
		{name: "production without api key", environ: without(productionEnv, "WORKOS_CLIENT_SECRET"),
			want: `config: auth.workos_api_key: is required in production mode (WORKOS_CLIENT_ID is set): set WORKOS_CLIENT_SECRET to the WorkOS API key`},
		{name: "production without cookie key", environ: without(productionEnv, "COOKIE_ENCRYPTION_KEY"),
			want: `config: auth.cookie_encryption_key: is required in production mode (WORKOS_CLIENT_ID is set): set COOKIE_ENCRYPTION_KEY to at least 32 random bytes`},
		{name: "short cookie key", environ: with(without(productionEnv, "COOKIE_ENCRYPTION_KEY"), "COOKIE_ENCRYPTION_KEY=tooshort"),
			want: `config: $COOKIE_ENCRYPTION_KEY: auth.cookie_encryption_key = <redacted>: is 8 bytes long; must be at least 32 bytes`},
		{name: "production http public url", environ: with(productionEnv, "TOOLGATE_SERVER_PUBLIC_URL=http://mcp.example.com"),
			want: `config: $TOOLGATE_SERVER_PUBLIC_URL: server.public_url = "http://mcp.example.com": must use https in production mode (WORKOS_CLIENT_ID is set) unless the host is a loopback address`},
		{name: "bad store key", environ: []string{"TOOLGATE_STORE_ENCRYPTION_KEY=abc"},
			want: `config: $TOOLGATE_STORE_ENCRYPTION_KEY: store.encryption_key = <redacted>: decodes to 2 bytes; must be 16, 24 or 32 bytes written as hex or standard base64`},
		{name: "dev users from env", environ: []string{"TOOLGATE_AUTH_DEV_USERS=x"},
			want: `config: $TOOLGATE_AUTH_DEV_USERS: auth.dev_users = "x": can only be set in the configuration file`},
		{name: "conflicting env names", environ: with(productionEnv, "TOOLGATE_AUTH_WORKOS_API_KEY=other"),
			want: `config: auth.workos_api_key: set differently by $TOOLGATE_AUTH_WORKOS_API_KEY and $WORKOS_CLIENT_SECRET; set only one`},
		{name: "duplicate dev user", file: "[[auth.dev_users]]\nemail = \"a@example.com\"\n[[auth.dev_users]]\nemail = \"A@example.com\"\n",
			want: `config: FILE: auth.dev_users[1].email = "A@example.com": is listed twice; dev user emails must be unique`},
		{name: "value with newline stays on one line", file: "[log]\nlevel = \"a\\nb\"\n",
			want: `config: FILE: log.level = "a\nb": must be one of debug, info, warn, error`},
		{name: "parse error", file: "[server\nlisten = 1\n",
			want: `config: FILE: line 1, column 8: toml: expected character ]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, tt.file)
			_, err := Load(Options{File: file, Environ: append([]string{}, tt.environ...), Overrides: tt.flags})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			got := err.Error()
			if strings.ContainsAny(got, "\r\n") {
				t.Errorf("message spans several lines: %q", got)
			}
			want := strings.ReplaceAll(tt.want, "FILE", file)
			if got != want {
				t.Errorf("message:\n got %s\nwant %s", got, want)
			}
			var ce *Error
			var ue *UnknownKeyError
			if !errors.As(err, &ce) && !errors.As(err, &ue) && tt.name != "parse error" {
				t.Errorf("error is %T, want *Error or *UnknownKeyError", err)
			}
		})
	}
}

func TestEncryptionKey(t *testing.T) {
	tests := []struct {
		in      string
		wantLen int
		wantErr bool
	}{
		{"", 0, false},
		{"000102030405060708090a0b0c0d0e0f", 16, false},
		{"000102030405060708090a0b0c0d0e0f1011121314151617", 24, false},
		{"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 32, false},
		{"AAECAwQFBgcICQoLDA0ODw==", 16, false},
		{"AAECAwQFBgcICQoLDA0ODw", 16, false},
		{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 32, false},
		{"AAECAwQFBgcICQoLDA0ODxAREhM=", 0, true}, // 20 bytes
		{"not a key!", 0, true},
	}
	for _, tt := range tests {
		b, err := StoreConfig{EncryptionKey: Secret(tt.in)}.EncryptionKeyBytes()
		if (err != nil) != tt.wantErr || len(b) != tt.wantLen {
			t.Errorf("EncryptionKeyBytes(%q) = %d bytes, %v; want %d bytes, error %v", tt.in, len(b), err, tt.wantLen, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), tt.in) {
			t.Errorf("error %q repeats the key", err)
		}
	}
}

func TestTOMLRedactsSecretsAndRoundTrips(t *testing.T) {
	secrets := []string{"sk_test_supersecretvalue_123456", "cookie-key-0123456789abcdef0123456789", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
	l, err := Load(Options{File: writeFile(t, "[[auth.dev_users]]\nemail = \"carol@example.com\"\nrole = \"admin\"\n"), Environ: with(productionEnv, "TOOLGATE_STORE_ENCRYPTION_KEY="+secrets[2])})
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.Config.TOML()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(out), s) {
			t.Errorf("TOML output contains the secret %q:\n%s", s, out)
		}
	}
	if got := strings.Count(string(out), Redacted); got != 3 {
		t.Errorf("TOML output has %d redacted values, want 3:\n%s", got, out)
	}
	// The output reads back to the same configuration, secrets aside.
	back, err := Load(Options{File: writeFile(t, string(out)), Environ: []string{
		"WORKOS_CLIENT_SECRET=" + secrets[0], "COOKIE_ENCRYPTION_KEY=" + secrets[1], "TOOLGATE_STORE_ENCRYPTION_KEY=" + secrets[2],
	}})
	if err != nil {
		t.Fatalf("reloading the rendered TOML: %v\n%s", err, out)
	}
	if want, got := l.Config, back.Config; !reflect.DeepEqual(want, got) {
		t.Errorf("round trip changed the config = %#v, want %#v", got, want)
	}
}

func TestSecretFormatting(t *testing.T) {
	s := Secret("hunter2-hunter2")
	for _, got := range []string{s.String(), s.GoString(), s.LogValue().String()} {
		if strings.Contains(got, "hunter2") {
			t.Errorf("formatted secret %q contains the value", got)
		}
	}
	b, _ := s.MarshalText()
	if string(b) != Redacted {
		t.Errorf("MarshalText = %q, want %q", b, Redacted)
	}
	if Secret("").String() != "" {
		t.Error("an empty secret should print as empty")
	}
}

func TestDerived(t *testing.T) {
	c := Default()
	if want, got := []string{"localhost:8788", "127.0.0.1:8788", "[::1]:8788"}, c.AllowedHosts(); !reflect.DeepEqual(want, got) {
		t.Errorf("AllowedHosts = %#v, want %#v", got, want)
	}
	if want, got := []string{"http://localhost:8788"}, c.AllowedOrigins(); !reflect.DeepEqual(want, got) {
		t.Errorf("AllowedOrigins = %#v, want %#v", got, want)
	}
	if got, want := c.PluginCacheDir(), filepath.Join("data", "wasm-cache"); got != want {
		t.Errorf("PluginCacheDir = %q, want %q", got, want)
	}
	if got := c.TrustedProxyPrefixes(); len(got) != 0 {
		t.Errorf("default TrustedProxyPrefixes = %v, want none", got)
	}
	c.Server.TrustedProxies = []string{"10.1.2.3/8", "192.0.2.7", "::ffff:198.51.100.1", " 2001:db8::/32 ", "not-an-ip"}
	if want, got := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("2001:db8::/32"),
	}, c.TrustedProxyPrefixes(); !reflect.DeepEqual(want, got) {
		t.Errorf("TrustedProxyPrefixes = %v, want %v", got, want)
	}
	c.Server.AllowedHosts = []string{"mcp.example.com"}
	c.Plugins.CacheDir = "/var/cache/tg"
	if want, got := []string{"mcp.example.com"}, c.AllowedHosts(); !reflect.DeepEqual(want, got) {
		t.Errorf("explicit AllowedHosts = %#v, want %#v", got, want)
	}
	if got := c.PluginCacheDir(); got != "/var/cache/tg" {
		t.Errorf("explicit PluginCacheDir = %q", got)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8788": true, "[::1]:80": true, "localhost:1": true, "127.1.2.3:9": true,
		"0.0.0.0:8788": false, ":8788": false, "[::]:80": false, "10.0.0.1:80": false, "example.com:80": false, "garbage": false,
	} {
		if got := IsLoopbackListen(addr); got != want {
			t.Errorf("IsLoopbackListen(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		720 * time.Hour: "720h", 5 * time.Minute: "5m", 90 * time.Second: "1m30s", time.Hour + 30*time.Minute: "1h30m", 15 * time.Second: "15s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestReadableSecretFileWarns(t *testing.T) {
	path := writeFile(t, "[auth]\ncookie_encryption_key = \"0123456789abcdef0123456789abcdef\"\n")
	tests := []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o644, true}, {0o640, true}}
	for _, tt := range tests {
		if err := os.Chmod(path, tt.mode); err != nil {
			t.Fatal(err)
		}
		l, err := Load(Options{File: path, Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(l.Warnings, "\n")
		if warned := strings.Contains(got, "auth.cookie_encryption_key"); warned != tt.warn {
			t.Errorf("mode %o: warnings %q, want a warning: %v", tt.mode, got, tt.warn)
		}
		if strings.Contains(got, "0123456789abcdef") {
			t.Errorf("warning repeats the secret: %q", got)
		}
	}
}
