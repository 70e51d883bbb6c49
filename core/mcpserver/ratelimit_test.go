package mcpserver

import (
	"strings"
	"testing"
	"time"
)

type manualClock struct{ t time.Time }

func (c *manualClock) now() time.Time          { return c.t }
func (c *manualClock) advance(d time.Duration) { c.t = c.t.Add(d) }

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
