package mcpserver

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

type manualClock struct{ t time.Time }

func (c *manualClock) now() time.Time          { return c.t }
func (c *manualClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestUserLimiter(t *testing.T) {
	type step struct {
		advance time.Duration
		user    string
		allowed bool
		wait    time.Duration
	}
	tests := []struct {
		name             string
		perMinute, burst int
		steps            []step
	}{
		{"burst then refused", 60, 3, []step{{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0}, {0, "a", false, time.Second}}},
		{"refills at the rate", 120, 1, []step{{0, "a", true, 0}, {0, "a", false, 500 * time.Millisecond}, {500 * time.Millisecond, "a", true, 0}}},
		{"users are independent", 60, 1, []step{{0, "a", true, 0}, {0, "b", true, 0}, {0, "a", false, time.Second}}},
		{"zero burst means one", 60, 0, []step{{0, "a", true, 0}, {0, "a", false, time.Second}}},
		{"a refusal spends nothing", 6, 1, []step{{0, "a", true, 0}, {5 * time.Second, "a", false, 5 * time.Second}, {5 * time.Second, "a", true, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &manualClock{t: time.Unix(1e9, 0)}
			l := newUserLimiter(tt.perMinute, tt.burst, 10, clk.now)
			for i, s := range tt.steps {
				clk.advance(s.advance)
				ok, wait := l.Allow(s.user)
				if ok != s.allowed {
					t.Fatalf("step %d: allowed %v, want %v", i, ok, s.allowed)
				}
				if !ok && (wait < s.wait-time.Millisecond || wait > s.wait+time.Millisecond) {
					t.Fatalf("step %d: wait %s, want %s", i, wait, s.wait)
				}
			}
		})
	}
	if newUserLimiter(0, 5, 10, time.Now) != nil || newUserLimiter(-3, 5, 10, time.Now) != nil {
		t.Error("a non-positive rate should turn the limit off")
	}
}

func TestUserLimiterBounded(t *testing.T) {
	clk := &manualClock{t: time.Unix(1e9, 0)}
	l := newUserLimiter(60, 1, 4, clk.now)
	for i := range 50 {
		l.Allow("user" + strconv.Itoa(i))
		if n := l.Len(); n > 4 {
			t.Fatalf("%d users tracked, want at most 4", n)
		}
	}
	clk.advance(2 * time.Second)
	l.Allow("late")
	if n := l.Len(); n != 1 {
		t.Errorf("after the idle time %d users tracked, want 1", n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {59500 * time.Millisecond, 60}} {
		if got := retryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("retryAfterSeconds(%s) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

// Through the MCP endpoint: alice's calls beyond her burst are tool errors
// with outcome rate_limited, bob is unaffected, and the budget comes back
// with time.
func TestToolCallRateLimit(t *testing.T) {
	clk := &manualClock{t: time.Now()}
	e := newEnv(t, func(c *Config) {
		c.ToolCallsPerMinute, c.ToolCallBurst = 6, 2
		c.Now = clk.now
	})
	w := wires[1]
	alice, _ := e.connect(t, w, "alice")
	bob, _ := e.connect(t, w, "bob")
	for i := range 2 {
		if res := call(t, alice, "echo", map[string]any{"message": "hi"}); res.IsError {
			t.Fatalf("call %d within the burst: %s", i+1, text(res))
		}
		if r := e.audit.waitRecord(t, "user_alice", "echo"); r.Outcome != outcomeOK {
			t.Fatalf("call %d: outcome %q", i+1, r.Outcome)
		}
	}
	res := call(t, alice, "echo", map[string]any{"message": "hi"})
	if !res.IsError || !strings.Contains(text(res), "retry after 10 seconds") {
		t.Fatalf("third call: IsError %v %q, want a rate-limit tool error", res.IsError, text(res))
	}
	if r := e.audit.waitRecord(t, "user_alice", "echo"); r.Outcome != outcomeRateLimited || r.Decision != "allow" || r.ErrorKind != outcomeRateLimited {
		t.Errorf("audit: decision %q outcome %q kind %q, want allow/rate_limited", r.Decision, r.Outcome, r.ErrorKind)
	}
	if got := metricValue(t, e.reg, "toolgate_mcp_tool_calls_total", "echo", outcomeRateLimited); got != 1 {
		t.Errorf("rate_limited calls metric %v, want 1", got)
	}
	if res := call(t, bob, "echo", map[string]any{"message": "hi"}); res.IsError {
		t.Errorf("bob, with his own budget: %s", text(res))
	}
	clk.advance(10 * time.Second)
	if res := call(t, alice, "echo", map[string]any{"message": "hi"}); res.IsError {
		t.Errorf("after the wait: %s", text(res))
	}
}
