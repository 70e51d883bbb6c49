package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/core/config"
)

// TestConfigRedactsEverySecretKey sets every key core/config declares as a
// secret (config.SecretKeys, so a new secret key is covered the moment it
// is added) to its own value, from the environment and from toolgate.toml,
// and checks that `toolgate config` hides every one of them, as is,
// URL-encoded or in base64, in its output, its warnings and its errors.
func TestConfigRedactsEverySecretKey(t *testing.T) {
	keys := config.SecretKeys()
	for _, want := range []string{"auth.workos_api_key", "auth.cookie_encryption_key", "store.encryption_key"} {
		if !slices.Contains(keys, want) {
			t.Fatalf("config.SecretKeys() = %v lacks %s", keys, want)
		}
	}
	// 32 bytes as 64 hex digits: a valid value for every secret key (an
	// AES-256 key, a cookie key of at least 32 bytes, an API key), and
	// unique per key.
	values := map[string]string{}
	for i, k := range keys {
		b := make([]byte, 32)
		for j := range b {
			b[j] = byte(i*37 + j*11 + 5)
		}
		values[k] = hex.EncodeToString(b)
	}
	// Production mode, so that the WorkOS keys are in use.
	base := []string{"WORKOS_CLIENT_ID=client_01ABC", "TOOLGATE_SERVER_PUBLIC_URL=https://mcp.example.com", "TOOLGATE_SERVER_LISTEN=0.0.0.0:8788"}

	check := func(t *testing.T, values map[string]string, out string) {
		t.Helper()
		for k, v := range values {
			for _, form := range []string{v, url.QueryEscape(v), base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)), v[:16]} {
				if strings.Contains(out, form) {
					t.Errorf("the value of %s appears in the output:\n%s", k, out)
				}
			}
		}
	}

	t.Run("environment", func(t *testing.T) {
		t.Chdir(t.TempDir())
		env := slices.Clone(base)
		for k, v := range values {
			env = append(env, config.EnvName(k)+"="+v)
		}
		code, out, errOut := runCmd(t, env, "config")
		if code != exitOK {
			t.Fatalf("config = %d, stderr %q", code, errOut)
		}
		check(t, values, out+errOut)
		if n := strings.Count(out, "'"+config.Redacted+"'"); n != len(keys) {
			t.Errorf("%d values redacted, want %d (one per secret key):\n%s", n, len(keys), out)
		}
	})

	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		var toml strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&toml, "%s = %q\n", k, values[k])
		}
		// Readable by others, so that the warning naming each secret key
		// is printed too.
		if err := os.WriteFile(filepath.Join(dir, config.DefaultFile), []byte(toml.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, config.DefaultFile), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCmd(t, base, "config")
		if code != exitOK {
			t.Fatalf("config = %d, stderr %q", code, errOut)
		}
		check(t, values, out+errOut)
		if n := strings.Count(out, "'"+config.Redacted+"'"); n != len(keys) {
			t.Errorf("%d values redacted, want %d (one per secret key):\n%s", n, len(keys), out)
		}
		if !strings.Contains(errOut, "other users can read it") {
			t.Errorf("no warning about the readable file with secrets: %q", errOut)
		}
	})

	// A value the configuration refuses (each key in turn, the others
	// valid) is named in the error without itself.
	t.Run("invalid", func(t *testing.T) {
		t.Chdir(t.TempDir())
		for _, k := range keys {
			bad := map[string]string{k: "short-" + strings.ReplaceAll(k, ".", "-") + "-Zq9"}
			env := slices.Clone(base)
			for other, v := range values {
				if other != k {
					env = append(env, config.EnvName(other)+"="+v)
				}
			}
			code, out, errOut := runCmd(t, append(env, config.EnvName(k)+"="+bad[k]), "config")
			if code != exitOK && !strings.Contains(errOut, k) {
				t.Errorf("%s refused without naming the key: %q", k, errOut)
			}
			check(t, bad, out+errOut)
		}
	})
}
