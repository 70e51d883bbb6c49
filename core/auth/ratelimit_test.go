package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// manualClock is a clock tests move by hand.
type manualClock struct{ t time.Time }

func (c *manualClock) now() time.Time          { return c.t }
func (c *manualClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"peer without proxies", "203.0.113.7:5555", []string{"198.51.100.1"}, nil, "203.0.113.7"},
		{"untrusted peer ignores header", "203.0.113.7:5555", []string{"198.51.100.1"}, trusted, "203.0.113.7"},
		{"trusted peer, one hop", "10.0.0.2:80", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"rightmost untrusted wins", "10.0.0.2:80", []string{"1.1.1.1, 198.51.100.1, 10.0.0.3"}, trusted, "198.51.100.1"},
		{"several header lines", "10.0.0.2:80", []string{"1.1.1.1", "198.51.100.1, 10.0.0.9"}, trusted, "198.51.100.1"},
		{"garbage stops at last trusted hop", "10.0.0.2:80", []string{"1.1.1.1, nonsense, 10.0.0.3"}, trusted, "10.0.0.3"},
		{"empty header", "10.0.0.2:80", nil, trusted, "10.0.0.2"},
		{"all trusted", "10.0.0.2:80", []string{"10.1.1.1, 10.2.2.2"}, trusted, "10.1.1.1"},
		{"ipv6 trusted peer", "[::1]:80", []string{"2001:db8::5"}, trusted, "2001:db8::5"},
		{"ipv4-mapped peer", "[::ffff:10.0.0.2]:80", []string{"198.51.100.4"}, trusted, "198.51.100.4"},
		{"port in header is not an address", "10.0.0.2:80", []string{"198.51.100.1:4444"}, trusted, "10.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/token", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, tt.trusted); got.String() != tt.want {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

// Over HTTP: each limited endpoint answers 429 with Retry-After once an
// address used its burst; JSON endpoints with a too_many_requests body,
// browser endpoints with the error page. Preflights are not counted.
func TestIPRateLimitEndpoints(t *testing.T) {
	tests := []struct {
		name, method, path, ctype, body string
		json                            bool
	}{
		{"register", "POST", PathRegister, "application/json", `{"redirect_uris":["https://a.example/cb"]}`, true},
		{"token", "POST", PathToken, "application/x-www-form-urlencoded", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"y"}}.Encode(), true},
		{"authorize", "GET", PathAuthorize + "?client_id=nobody", "", "", false},
		{"consent", "POST", PathAuthorize, "application/x-www-form-urlencoded", "action=approve", false},
		{"callback", "GET", PathCallback + "?state=x&code=y", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &manualClock{t: time.Now()}
			e := newTestEnv(t, func(c *Config) {
				c.IPRateLimit, c.IPRateBurst = 2, 2
				c.RegisterRate = -1
				c.Now = clk.now
			}, nil)
			if tt.method == "POST" {
				for range 3 {
					if resp, _ := e.do("OPTIONS", tt.path, "", "", nil); resp.StatusCode == http.StatusTooManyRequests {
						t.Fatal("a preflight was rate limited")
					}
				}
			}
			for i := range 2 {
				resp, body := e.do(tt.method, tt.path, tt.ctype, tt.body, nil)
				if resp.StatusCode == http.StatusTooManyRequests {
					t.Fatalf("request %d within the burst: 429 %s", i+1, body)
				}
			}
			resp, body := e.do(tt.method, tt.path, tt.ctype, tt.body, nil)
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("third request: %d %s, want 429", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Retry-After"); got != "30" {
				t.Errorf("Retry-After %q, want 30 (2 a minute)", got)
			}
			if tt.json {
				var eb errorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error != ErrCodeTooManyRequests || eb.Description == "" {
					t.Errorf("body %s, want a too_many_requests JSON error", body)
				}
			} else if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(body), ErrCodeTooManyRequests) {
				t.Errorf("page %q %s, want the HTML error page", ct, body)
			}
			clk.advance(30 * time.Second)
			if resp, body := e.do(tt.method, tt.path, tt.ctype, tt.body, nil); resp.StatusCode == http.StatusTooManyRequests {
				t.Errorf("after Retry-After: still 429 %s", body)
			}
		})
	}
}

// Only the listed endpoints are limited.
func TestIPRateLimitLeavesOthersAlone(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.IPRateLimit, c.IPRateBurst = 1, 1 }, nil)
	for _, p := range []string{PathASMetadata, PathPRMetadata, PathRevoke} {
		for range 3 {
			method := "GET"
			if p == PathRevoke {
				method = "POST"
			}
			if resp, body := e.do(method, p, "application/x-www-form-urlencoded", "token=x", nil); resp.StatusCode == http.StatusTooManyRequests {
				t.Fatalf("%s %s: 429 %s", method, p, body)
			}
		}
	}
}

func FuzzForwardedFor(f *testing.F) {
	for _, s := range []string{"198.51.100.1", "1.1.1.1, 10.0.0.3", " , ,", "2001:db8::1%eth0, ::ffff:10.0.0.1", "300.1.1.1", ""} {
		f.Add(s)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	peer := netip.MustParseAddr("10.0.0.2")
	f.Fuzz(func(t *testing.T, header string) {
		got := forwardedFor([]string{header}, peer, trusted)
		if got == peer {
			return
		}
		// Any other answer is an address the header spells.
		for _, part := range strings.Split(header, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(part)); err == nil && a.Unmap() == got {
				return
			}
		}
		t.Fatalf("forwardedFor(%q) = %s, which the header does not hold", header, got)
	})
}
