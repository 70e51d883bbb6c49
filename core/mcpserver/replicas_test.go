package mcpserver

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// roundRobin is a load balancer without affinity: each request goes to the
// next replica in turn, with the user's token.
type roundRobin struct {
	token    string
	replicas []*url.URL

	mu     sync.Mutex
	next   int
	served []int // requests sent to each replica
}

func newRoundRobin(t *testing.T, token string, bases ...string) *roundRobin {
	t.Helper()
	rr := &roundRobin{token: token, served: make([]int, len(bases))}
	for _, b := range bases {
		u, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		rr.replicas = append(rr.replicas, u)
	}
	return rr
}

func (rr *roundRobin) RoundTrip(r *http.Request) (*http.Response, error) {
	rr.mu.Lock()
	i := rr.next % len(rr.replicas)
	rr.next++
	rr.served[i]++
	rr.mu.Unlock()
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = rr.replicas[i].Scheme, rr.replicas[i].Host, ""
	r.Header.Set("Authorization", "Bearer "+rr.token)
	return http.DefaultTransport.RoundTrip(r)
}

func (rr *roundRobin) counts() []int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return append([]int(nil), rr.served...)
}

// TestStatelessNeedsNoAffinity: a 2026-07-28 client behind a round-robin
// balancer over two replicas (two servers that share nothing but their
// plugins and the token check) lists and calls tools with every request
// landing on another replica.
func TestStatelessNeedsNoAffinity(t *testing.T) {
	a, b := newEnv(t, nil), newEnv(t, nil)
	rr := newRoundRobin(t, "alice", a.url, b.url)
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1.0.0"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: "http://replicas.invalid/mcp", HTTPClient: &http.Client{Transport: rr}, MaxRetries: -1,
	}, &mcp.ClientSessionOptions{ProtocolVersion: newestStatelessVersion})
	if err != nil {
		t.Fatalf("connect through the balancer: %v", err)
	}
	defer cs.Close()
	if cs.ID() != "" {
		t.Fatalf("a 2026-07-28 client got session %q", cs.ID())
	}
	for i := range 4 {
		if got := toolNames(t, cs); !strings.Contains(strings.Join(got, ","), "echo") {
			t.Fatalf("tools/list %d = %v", i, got)
		}
		res := call(t, cs, "echo", map[string]any{"message": "hi"})
		if res.IsError || !strings.Contains(text(res), "hi") {
			t.Fatalf("echo %d = %q (IsError %v)", i, text(res), res.IsError)
		}
	}
	if n := rr.counts(); n[0] < 4 || n[1] < 4 {
		t.Errorf("requests per replica = %v, want both replicas to have served several", n)
	}
}

// TestSessionOnAnotherReplica: a stateful session lives on the replica
// that opened it. Any other replica answers a request naming it (POST, the
// GET stream, DELETE) with 404, which tells the client to initialize again
// (MCP transports, session management); that new session, on the other
// replica, works. Hence the balancer must keep a session's requests on one
// replica (affinity on Mcp-Session-Id), and /sse's on one for the stream's
// lifetime.
func TestSessionOnAnotherReplica(t *testing.T) {
	a, b := newEnv(t, nil), newEnv(t, nil)
	for _, w := range wires[1:3] {
		t.Run(w.name, func(t *testing.T) {
			onA, _ := a.connect(t, w, "alice")
			h := withHeader(jsonHeaders, "Mcp-Session-Id", onA.ID())
			h.Set("Mcp-Protocol-Version", w.version)
			sse := withHeader(h, "Accept", "text/event-stream")
			for _, req := range []struct {
				method string
				header http.Header
				body   string
			}{{http.MethodPost, h, listBody}, {http.MethodGet, sse, ""}, {http.MethodDelete, h, ""}} {
				if code, body := rawRequest(t, req.method, b.url+"/mcp", "alice", req.header, req.body); code != http.StatusNotFound {
					t.Errorf("%s on replica B with A's session: %d %q, want 404", req.method, code, body)
				}
			}
			// A's session is untouched, and the client's new session on B
			// works.
			if got := toolNames(t, onA); len(got) == 0 {
				t.Error("A's session lists no tools")
			}
			onB, _ := b.connect(t, w, "alice")
			if res := call(t, onB, "echo", map[string]any{"message": "again"}); res.IsError {
				t.Errorf("echo on the new session on B: %s", text(res))
			}
		})
	}
	t.Run("sse", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/sse", nil)
		req.Header.Set("Authorization", "Bearer alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
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
		if code, body := rawRequest(t, http.MethodPost, b.url+endpoint, "alice", jsonHeaders, listBody); code != http.StatusNotFound {
			t.Errorf("POST to replica B for A's SSE stream: %d %q, want 404", code, body)
		}
	})
}

// TestSessionIDPrefix: with a replica's prefix, every session ID it hands
// out (stateful streamable and SSE) starts with it, so a load balancer can
// route on it; the random part stays as long as without one.
func TestSessionIDPrefix(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SessionIDPrefix = "a." })
	cs, _ := e.connect(t, wires[1], "alice")
	if id := cs.ID(); !strings.HasPrefix(id, "a.") || len(id) != len("a.")+26 {
		t.Errorf("stateful session ID %q, want a. and 26 random characters", id)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/sse", nil)
	req.Header.Set("Authorization", "Bearer alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if !strings.HasPrefix(data, "/sse?sessionid=a.") {
				t.Errorf("SSE endpoint %q, want sessionid=a.…", data)
			}
			break
		}
	}
	for _, tt := range []struct {
		prefix string
		ok     bool
	}{{"web-1.", true}, {"a b", false}, {"a?", false}, {"a&b", false}, {"é", false}} {
		srv, err := New(Config{Host: nopHost{}, CallerFromContext: callerFromContext, SessionIDPrefix: tt.prefix})
		if (err == nil) != tt.ok {
			t.Errorf("prefix %q: New = %v, want ok %v", tt.prefix, err, tt.ok)
		}
		if srv != nil {
			_ = srv.Close(t.Context())
		}
	}
}
