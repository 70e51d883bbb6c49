package mcpserver

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var jsonHeaders = http.Header{
	"Content-Type": {"application/json"},
	"Accept":       {"application/json, text/event-stream"},
}

func withHeader(h http.Header, k, v string) http.Header {
	out := h.Clone()
	out.Set(k, v)
	return out
}

const listBody = `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`

// TestSessionBelongsToItsUser: a stateful streamable session opened by
// alice refuses bob's token on every method.
func TestSessionBelongsToItsUser(t *testing.T) {
	e := newEnv(t, nil)
	for _, w := range wires[1:3] {
		t.Run(w.name, func(t *testing.T) {
			alice, _ := e.connect(t, w, "alice")
			h := withHeader(jsonHeaders, "Mcp-Session-Id", alice.ID())
			h.Set("Mcp-Protocol-Version", w.version)
			for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
				body := ""
				if method == http.MethodPost {
					body = listBody
				}
				if code, resp := rawRequest(t, method, e.url+"/mcp", "bob", h, body); code != http.StatusForbidden {
					t.Errorf("%s with bob's token on alice's session: %d %q, want 403", method, code, resp)
				}
			}
			// alice's own session still works, and bob's hijack attempts
			// did not end it.
			toolNames(t, alice)
			code, _ := rawRequest(t, http.MethodPost, e.url+"/mcp", "alice", withHeader(h, "Mcp-Session-Id", "no-such-session"), listBody)
			if code != http.StatusNotFound {
				t.Errorf("unknown session: %d, want 404", code)
			}
			// The owner ends the session; it is gone afterwards.
			if code, body := rawRequest(t, http.MethodDelete, e.url+"/mcp", "alice", h, ""); code != http.StatusNoContent {
				t.Errorf("alice DELETE: %d %q, want 204", code, body)
			}
			if code, _ := rawRequest(t, http.MethodPost, e.url+"/mcp", "alice", h, listBody); code != http.StatusNotFound {
				t.Errorf("POST after DELETE: %d, want 404", code)
			}
		})
	}
}

// TestSSESessionBelongsToItsUser: the same for the legacy SSE transport,
// whose go-sdk handler binds no user.
func TestSSESessionBelongsToItsUser(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/sse", nil)
	req.Header.Set("Authorization", "Bearer alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /sse: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	var endpoint string
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			endpoint = data
			break
		}
	}
	if !strings.HasPrefix(endpoint, "/sse?sessionid=") {
		t.Fatalf("endpoint event = %q", endpoint)
	}
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	if code, body := rawRequest(t, http.MethodPost, e.url+endpoint, "bob", jsonHeaders, init); code != http.StatusForbidden {
		t.Errorf("bob posting to alice's SSE session: %d %q, want 403", code, body)
	}
	if code, body := rawRequest(t, http.MethodPost, e.url+endpoint, "alice", jsonHeaders, init); code != http.StatusAccepted {
		t.Errorf("alice posting to her SSE session: %d %q, want 202", code, body)
	}
	if code, _ := rawRequest(t, http.MethodPost, e.url+"/sse?sessionid=nosuch", "alice", jsonHeaders, init); code != http.StatusNotFound {
		t.Errorf("unknown SSE session: %d, want 404", code)
	}
	if code, _ := rawRequest(t, http.MethodGet, e.url+"/sse", "", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("GET /sse without a token: %d, want 401", code)
	}
}

// TestOriginAndHost: DNS-rebinding protection with allow-lists, as behind
// a reverse proxy on the same host.
func TestOriginAndHost(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.AllowedHosts = []string{"mcp.example.com", "127.0.0.1"}
		c.AllowedOrigins = []string{"https://inspector.example.com"}
	})
	lone := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`
	stateless := withHeader(jsonHeaders, "Mcp-Protocol-Version", "2025-11-25")
	tests := []struct {
		name   string
		method string
		path   string
		host   string
		origin string
		token  string
		want   int
	}{
		{"no Origin passes", http.MethodPost, "/mcp", "", "", "alice", http.StatusOK},
		{"allowed Origin passes", http.MethodPost, "/mcp", "", "https://inspector.example.com", "alice", http.StatusOK},
		{"allowed Origin, any case", http.MethodPost, "/mcp", "", "HTTPS://Inspector.Example.com", "alice", http.StatusOK},
		{"proxied Host passes", http.MethodPost, "/mcp", "mcp.example.com", "", "alice", http.StatusOK},
		{"same-origin browser request passes", http.MethodPost, "/mcp", "mcp.example.com", "https://mcp.example.com", "alice", http.StatusOK},
		{"evil Origin POST", http.MethodPost, "/mcp", "", "https://evil.example", "alice", http.StatusForbidden},
		{"evil Origin GET", http.MethodGet, "/mcp", "", "https://evil.example", "alice", http.StatusForbidden},
		{"evil Origin DELETE", http.MethodDelete, "/mcp", "", "https://evil.example", "alice", http.StatusForbidden},
		{"evil Origin on /sse", http.MethodGet, "/sse", "", "https://evil.example", "alice", http.StatusForbidden},
		{"evil Origin before auth", http.MethodPost, "/mcp", "", "https://evil.example", "", http.StatusForbidden},
		{"null Origin", http.MethodPost, "/mcp", "", "null", "alice", http.StatusForbidden},
		{"Origin with a path", http.MethodPost, "/mcp", "", "https://inspector.example.com/x", "alice", http.StatusForbidden},
		{"rebound Host", http.MethodPost, "/mcp", "evil.example", "", "alice", http.StatusForbidden},
		{"rebound Host on /sse", http.MethodGet, "/sse", "evil.example", "", "alice", http.StatusForbidden},
		{"no token", http.MethodPost, "/mcp", "", "", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, e.url+tt.path, strings.NewReader(lone))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = stateless.Clone()
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

// TestLoopbackHostDefault: without an allow-list, a request on a loopback
// socket must name a loopback host (the go-sdk's rule, which Guard keeps
// as its default).
func TestLoopbackHostDefault(t *testing.T) {
	e := newEnv(t, nil)
	h := withHeader(jsonHeaders, "Mcp-Protocol-Version", "2025-11-25")
	for host, want := range map[string]int{"localhost": http.StatusOK, "127.0.0.1": http.StatusOK, "evil.example": http.StatusForbidden} {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/mcp", strings.NewReader(listBody))
		req.Header = h.Clone()
		req.Header.Set("Authorization", "Bearer alice")
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// TestAnyHost: "*" leaves the Host check to the composition root.
func TestAnyHost(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowedHosts = []string{"*"} })
	req, _ := http.NewRequest(http.MethodPost, e.url+"/mcp", strings.NewReader(listBody))
	req.Header = withHeader(jsonHeaders, "Mcp-Protocol-Version", "2025-11-25")
	req.Header.Set("Authorization", "Bearer alice")
	req.Host = "proxied.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("any Host: %d, want 200", resp.StatusCode)
	}
}

// TestLimits: request bodies and headers are bounded.
func TestLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxRequestBodyBytes = 1 << 10
		c.MaxHeaderBytes = 2 << 10
	})
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"` + strings.Repeat("x", 2<<10) + `"}}}`
	for _, version := range []string{"", "2025-11-25", "2026-07-28"} {
		h := jsonHeaders.Clone()
		if version != "" {
			h.Set("Mcp-Protocol-Version", version)
		}
		if code, _ := rawRequest(t, http.MethodPost, e.url+"/mcp", "alice", h, big); code != http.StatusRequestEntityTooLarge {
			t.Errorf("version %q: big body: %d, want 413", version, code)
		}
	}
	h := withHeader(jsonHeaders, "X-Padding", strings.Repeat("p", 3<<10))
	if code, _ := rawRequest(t, http.MethodPost, e.url+"/mcp", "alice", h, listBody); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("big headers: %d, want 431", code)
	}
}

// TestUnsupportedVersion: a protocol version the server does not speak is
// refused with 400.
func TestUnsupportedVersion(t *testing.T) {
	e := newEnv(t, nil)
	if code, _ := rawRequest(t, http.MethodPost, e.url+"/mcp", "alice", withHeader(jsonHeaders, "Mcp-Protocol-Version", "1999-01-01"), listBody); code != http.StatusBadRequest {
		t.Errorf("version 1999-01-01: %d, want 400", code)
	}
}

// TestAuditRetentionAndFlush: records carry the retention and Close
// stores every queued record.
func TestAuditRetentionAndFlush(t *testing.T) {
	now := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	e := newEnv(t, func(c *Config) {
		c.AuditRetention = 48 * time.Hour
		c.Now = func() time.Time { return now }
	})
	cs, _ := e.connect(t, wires[0], "bob")
	call(t, cs, "paint", map[string]any{"prompt": "x"})
	call(t, cs, "echo", map[string]any{"message": "x"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := e.audit.ListAudit(ctx, storeQueryAll)
	if len(recs) != 2 {
		t.Fatalf("%d records after Close, want 2", len(recs))
	}
	for _, r := range recs {
		if !r.Time.Equal(now) || !r.ExpiresAt.Equal(now.Add(48*time.Hour)) {
			t.Errorf("record %s: time %v, expires %v", r.Tool, r.Time, r.ExpiresAt)
		}
	}
	if !strings.Contains(e.logs.String(), `msg="tool call" user=user_bob`) {
		t.Error("no audit log line")
	}
	if strings.Contains(e.logs.String(), `"prompt"`) || strings.Contains(e.logs.String(), "Bearer") {
		t.Error("the log holds arguments or tokens")
	}
}

// TestSessionLimit: a user's sessions beyond the limit close the oldest.
func TestSessionLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxSessionsPerUser = 2 })
	for _, w := range []wire{wires[1], wires[3]} {
		t.Run(w.name, func(t *testing.T) {
			first, _ := e.connect(t, w, "alice")
			second, _ := e.connect(t, w, "alice")
			bob, _ := e.connect(t, w, "bob") // other users do not count
			third, _ := e.connect(t, w, "alice")
			if _, err := first.ListTools(context.Background(), nil); err == nil {
				t.Error("the oldest session still works after the limit was passed")
			}
			for _, cs := range []*mcp.ClientSession{second, third, bob} {
				toolNames(t, cs)
			}
			first.Close()
			second.Close()
			third.Close()
			bob.Close()
		})
	}
}
