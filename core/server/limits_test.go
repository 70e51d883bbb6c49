package server

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The abuse-limit keys reach the sign-in endpoints: auth.rate_limit and
// auth.rate_limit_burst per client address, X-Forwarded-For honoured only
// from server.trusted_proxies.
func TestRateLimitWiring(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		// forwarded addresses of the three requests after the burst of 2
		forwarded []string
		want      []int
	}{
		{"no trusted proxies: the header is ignored", nil, []string{"198.51.100.1", "198.51.100.2"}, []int{http.StatusTooManyRequests, http.StatusTooManyRequests}},
		{"trusted loopback proxy: each forwarded client has its own budget", []string{"127.0.0.0/8", "::1"}, []string{"198.51.100.1", "198.51.100.2"}, []int{http.StatusBadRequest, http.StatusBadRequest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Auth.RateLimit, cfg.Auth.RateLimitBurst = 1, 2
			cfg.Server.TrustedProxies = tt.trusted
			ts := startServer(t, cfg, nil)
			post := func(xff string) (*http.Response, string) {
				req, err := http.NewRequest("POST", ts.base+"/register", strings.NewReader("redirect_uris=x"))
				if err != nil {
					t.Fatal(err)
				}
				// Refused before the store is asked, so only the limit decides
				// between 400 and 429.
				req.Header.Set("Content-Type", "text/plain")
				if xff != "" {
					req.Header.Set("X-Forwarded-For", xff)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return resp, string(b)
			}
			for i := range 2 {
				if resp, body := post("203.0.113.9"); resp.StatusCode == http.StatusTooManyRequests {
					t.Fatalf("request %d within the burst: 429 %s", i+1, body)
				}
			}
			for i, xff := range tt.forwarded {
				resp, body := post(xff)
				if resp.StatusCode != tt.want[i] {
					t.Fatalf("request from %s: %d %s, want %d", xff, resp.StatusCode, body, tt.want[i])
				}
				if resp.StatusCode == http.StatusTooManyRequests {
					var eb struct{ Error, ErrorDescription string }
					if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error != "too_many_requests" || resp.Header.Get("Retry-After") == "" {
						t.Errorf("429 body %s, Retry-After %q", body, resp.Header.Get("Retry-After"))
					}
				}
			}
		})
	}
}

// Slow clients: a connection that never finishes its headers is closed
// after server.read_header_timeout, and an idle keep-alive connection
// after server.idle_timeout. The server closes the socket on its own; the
// test only waits for that, with a generous deadline.
func TestSlowClientTimeouts(t *testing.T) {
	tests := []struct {
		name string
		send string // what the client writes before going quiet
		want string // a prefix of what the server answers before closing
	}{
		{"headers never finish", "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ", ""},
		{"idle keep-alive", "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", "HTTP/1.1 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Server.ReadHeaderTimeout = time.Second
			cfg.Server.IdleTimeout = time.Second
			ts := startServer(t, cfg, nil)
			conn, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tt.send); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := conn.SetReadDeadline(start.Add(30 * time.Second)); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(conn) // returns when the server closes
			if err != nil {
				t.Fatalf("the server did not close the connection: %v (after %s)", err, time.Since(start))
			}
			if !strings.HasPrefix(string(got), tt.want) {
				t.Errorf("answer %q, want prefix %q", got, tt.want)
			}
			if tt.want == "" && len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 408") {
				t.Errorf("unfinished headers answered %q, want nothing or 408", got)
			}
		})
	}
}
