package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadFile feeds arbitrary bytes to the toolgate.toml parse and
// validate path. Whatever the input, Load must not panic, every error must
// be one line starting with "config: ", and every configuration it accepts
// must render to TOML that loads back to the same configuration.
func FuzzLoadFile(f *testing.F) {
	seeds := []string{
		"",
		"[server]\nlisten = \"127.0.0.1:9000\"\npublic_url = \"http://127.0.0.1:9000\"\n",
		"[log]\nlevel = \"loud\"\n",
		"[server]\nlisen = 1\n",
		"server = 3\n",
		"[log.level]\nx = 1\n",
		"[server]\nmax_body_bytes = 9223372036854775807\nmax_header_bytes = -1\n",
		"[auth]\naccess_token_ttl = \"1h\"\nrefresh_token_ttl = \"30m\"\n",
		"[[auth.dev_users]]\nemail = \"x@y.z\"\npermissions = [\"a\", 1]\n",
		"[[auth.dev_users]]\nemail = \"x@y.z\"\nrole = \"admin\"\norganization = \"Acme\"\n",
		"[store]\nencryption_key = \"000102030405060708090a0b0c0d0e0f\"\ngc_interval = \"1m\"\n",
		"[server]\nallowed_hosts = [\"a.example\", \"b.example:1\"]\nallowed_origins = [\"https://a.example\"]\n",
		"[plugins]\npool_size = 4\nwatch = false\ncache_dir = \"/tmp/c\"\n",
		"[server\n",
		"a = 1979-05-27T07:32:00Z\n",
		"[server]\nlisten = \"127.0.0.1:9000\"\n[server]\nlisten = \"x\"\n",
		"\"server.listen\" = \"127.0.0.1:1\"\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "toolgate.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Load(Options{File: path, Environ: []string{}})
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: ") || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error is not one config line: %q", msg)
			}
			var ce *Error
			if errors.As(err, &ce) && ce.Source == path && !strings.Contains(msg, path) {
				t.Fatalf("error %q does not name the file", msg)
			}
			return
		}
		out, err := l.Config.TOML()
		if err != nil {
			t.Fatalf("TOML() of an accepted config: %v", err)
		}
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		back, err := Load(Options{File: path, Environ: []string{}})
		if err != nil {
			// Secrets are redacted, so a config holding one need not reload.
			if l.Config.Store.EncryptionKey.IsSet() || l.Config.Auth.WorkOSAPIKey.IsSet() || l.Config.Auth.CookieEncryptionKey.IsSet() {
				return
			}
			t.Fatalf("rendered TOML does not load: %v\n%s", err, out)
		}
		again, err := back.Config.TOML()
		if err != nil || string(again) != string(out) {
			t.Fatalf("round trip changed the config:\n%s\nthen\n%s", out, again)
		}
	})
}
