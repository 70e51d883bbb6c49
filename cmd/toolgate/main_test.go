package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

// runCmd runs one command line in-process.
func runCmd(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, environ, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"Usage:", "serve", "config", "plugin", "grants", "clients", "version"}},
		{[]string{"serve", "-h"}, []string{"Usage: toolgate serve", "-config FILE", "-listen ADDR", `default "127.0.0.1:8788"`, "-public-url URL", `default "http://localhost:8788"`, "-data-dir DIR", `default "./data"`, "-plugins-dir DIR", "-plugins-config FILE", "-log-level LEVEL", `default "info"`, "-log-format FORMAT", "$TOOLGATE_SERVER_LISTEN", "Examples:"}},
		{[]string{"config", "--help"}, []string{"Usage: toolgate config", "<redacted>", "-listen ADDR", "Examples:"}},
		{[]string{"version", "-h"}, []string{"Usage: toolgate version", "Examples:"}},
		{[]string{"plugin", "-h"}, []string{"Usage: toolgate plugin", "subcommands: inspect, new", "inspect", "new", "Examples:"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, []string{}, tt.args...)
			if code != exitOK {
				t.Errorf("exit code %d, want 0 (stderr %q)", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %q:\n%s", w, out)
				}
			}
			if strings.Count(out, "Usage:") != 1 {
				t.Errorf("help printed %d times", strings.Count(out, "Usage:"))
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"serve", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
		{[]string{"plugin"}, "subcommands: inspect, new"},
		{[]string{"plugin", "frob"}, `unknown command "frob"`},
	}
	for _, tt := range tests {
		code, _, errOut := runCmd(t, []string{}, tt.args...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("toolgate %v = %d %q, want %d and %q", tt.args, code, errOut, exitUsage, tt.want)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(out, "toolgate ") || !strings.Contains(out, "go        go1.") {
		t.Errorf("version = %d %q", code, out)
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	secrets := map[string]string{
		"WORKOS_CLIENT_SECRET":          "sk_test_a1b2c3d4e5f6g7h8i9j0",
		"COOKIE_ENCRYPTION_KEY":         "0123456789abcdefghijklmnopqrstuvwxyz",
		"TOOLGATE_STORE_ENCRYPTION_KEY": "000102030405060708090a0b0c0d0e0f",
	}
	env := []string{"WORKOS_CLIENT_ID=client_01ABC", "TOOLGATE_SERVER_PUBLIC_URL=https://mcp.example.com"}
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	code, out, errOut := runCmd(t, env, "config", "-listen", "0.0.0.0:9000")
	if code != exitOK {
		t.Fatalf("config = %d, stderr %q", code, errOut)
	}
	for name, v := range secrets {
		if strings.Contains(out+errOut, v) {
			t.Errorf("the value of %s appears in the output", name)
		}
	}
	for _, want := range []string{"workos_api_key = '<redacted>'", "cookie_encryption_key = '<redacted>'", "encryption_key = '<redacted>'", "workos_client_id = 'client_01ABC'", "listen = '0.0.0.0:9000'", "production mode"} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q:\n%s", want, out)
		}
	}
}

func TestConfigErrorIsOneLine(t *testing.T) {
	t.Chdir(t.TempDir())
	code, out, errOut := runCmd(t, []string{"TOOLGATE_LOG_LEVEL=loud"}, "config")
	want := "config: $TOOLGATE_LOG_LEVEL: log.level = \"loud\": must be one of debug, info, warn, error\n"
	if code != exitError || errOut != want || out != "" {
		t.Errorf("config with a bad level = %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
	code, _, errOut = runCmd(t, []string{}, "serve", "-listen", "0.0.0.0:8788")
	if code != exitError || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "server.listen") {
		t.Errorf("serve on a public address in development mode = %d %q, want one line about server.listen", code, errOut)
	}
}

func TestFormatVersion(t *testing.T) {
	info := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/toolgate/toolgate", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"},
			{Key: "vcs.time", Value: "2026-11-26T05:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	got := formatVersion(info)
	for _, want := range []string{"toolgate v1.2.3\n", "module    github.com/toolgate/toolgate\n", "revision  0123456789abcdef (modified)\n", "committed 2026-11-26T05:00:00Z\n", "go        go1.26.0 "} {
		if !strings.Contains(got, want) {
			t.Errorf("formatVersion lacks %q:\n%s", want, got)
		}
	}
	info.Main.Version, info.Settings = "", nil
	if got := formatVersion(info); !strings.HasPrefix(got, "toolgate (devel)\n") || strings.Contains(got, "revision") {
		t.Errorf("formatVersion without VCS information:\n%s", got)
	}
}
