package mcpserver

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// FuzzIsInitialize: the router's peek at untrusted bodies never panics and
// agrees with a full JSON decode.
func FuzzIsInitialize(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"initialize"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"initialize"}]`,
		`{"method":"initialize"`,
		`{"method":"\u0069nitialize"}`,
		`{"method":"initialize","method":"tools/list"}`,
		``, `null`, `"initialize"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got := isInitialize(body)
		var msg struct {
			Method string `json:"method"`
		}
		want := json.Unmarshal(body, &msg) == nil && msg.Method == "initialize" && strings.Contains(string(body), `"initialize"`)
		if got != want {
			t.Errorf("isInitialize(%q) = %v, want %v", body, got, want)
		}
	})
}

// FuzzOrigin: Origin headers are untrusted; a normalised origin is always
// a bare http(s) scheme and host that normalises to itself.
func FuzzOrigin(f *testing.F) {
	for _, seed := range []string{
		"https://inspector.example.com", "http://localhost:6274", "HTTPS://A.example:8443", "null",
		"https://a.example/path", "https://user@a.example", "javascript:alert(1)", "https://[::1]:8080", "",
		"https://a.example?x", "https://a.example#f", " https://a.example ",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, origin string) {
		o, ok := normalizeOrigin(origin)
		if !ok {
			return
		}
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			t.Fatalf("normalizeOrigin(%q) = %q: not http(s)", origin, o)
		}
		if o != strings.ToLower(o) {
			t.Fatalf("normalizeOrigin(%q) = %q: not lower case", origin, o)
		}
		u, err := url.Parse(o)
		if err != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			t.Fatalf("normalizeOrigin(%q) = %q: not a bare origin", origin, o)
		}
		if again, ok := normalizeOrigin(o); !ok || again != o {
			t.Fatalf("normalizeOrigin(%q) = %q, %v: not idempotent", o, again, ok)
		}
	})
}

// FuzzHostRules: allow-list entries and Host headers never panic the
// parser, and a parsed entry matches the Host it was written as.
func FuzzHostRules(f *testing.F) {
	for _, seed := range []string{"mcp.example.com", "mcp.example.com:8443", "[::1]:8788", "::1", "LOCALHOST", "", "a/b", "h:"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		rules, err := parseHosts([]string{entry})
		if err != nil || rules[0].host == "*" {
			return
		}
		h, p := splitHost(strings.ToLower(strings.TrimSpace(entry)))
		if rules[0].host != h || rules[0].port != p {
			t.Fatalf("parseHosts(%q) = %+v, want %q %q", entry, rules[0], h, p)
		}
	})
}

func TestIsInitialize(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, true},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"initialize"}}`, false},
		{`[{"jsonrpc":"2.0","id":1,"method":"initialize"}]`, false},
		{`{"jsonrpc":"2.0","id":1,"method":"initialize"`, false},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, false},
	}
	for _, tt := range tests {
		if got := isInitialize([]byte(tt.body)); got != tt.want {
			t.Errorf("isInitialize(%s) = %v, want %v", tt.body, got, tt.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no host", Config{CallerFromContext: callerFromContext}, "Config.Host is required"},
		{"bad origin", Config{AllowedOrigins: []string{"inspector.example.com"}}, `allowed origin "inspector.example.com"`},
		{"bad host", Config{AllowedHosts: []string{"https://x/"}}, `allowed host "https://x/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Host == nil && tt.name != "no host" {
				tt.cfg.Host = nopHost{}
				tt.cfg.CallerFromContext = callerFromContext
			}
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
