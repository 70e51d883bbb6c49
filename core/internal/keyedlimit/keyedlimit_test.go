package keyedlimit

import (
	"strconv"
	"testing"
	"time"
)

// manualClock is a clock tests move by hand.
type manualClock struct{ t time.Time }

func (c *manualClock) now() time.Time          { return c.t }
func (c *manualClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestAllow(t *testing.T) {
	type step struct {
		advance time.Duration
		key     string
		allowed bool
		wait    time.Duration // expected wait when refused
	}
	tests := []struct {
		name             string
		perMinute, burst int
		steps            []step
	}{
		{"burst then refused", 60, 3, []step{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0}, {0, "a", false, time.Second},
		}},
		{"refill after the wait", 60, 1, []step{
			{0, "a", true, 0}, {500 * time.Millisecond, "a", false, 500 * time.Millisecond}, {500 * time.Millisecond, "a", true, 0},
		}},
		{"refills at the rate", 120, 1, []step{
			{0, "a", true, 0}, {0, "a", false, 500 * time.Millisecond}, {500 * time.Millisecond, "a", true, 0},
		}},
		{"keys are independent", 60, 1, []step{
			{0, "a", true, 0}, {0, "b", true, 0}, {0, "a", false, time.Second}, {0, "b", false, time.Second},
		}},
		{"zero burst means one", 60, 0, []step{
			{0, "a", true, 0}, {0, "a", false, time.Second},
		}},
		{"refused requests take no token", 6, 1, []step{
			{0, "a", true, 0}, {0, "a", false, 10 * time.Second}, {5 * time.Second, "a", false, 5 * time.Second}, {5 * time.Second, "a", true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &manualClock{t: time.Unix(1e9, 0)}
			l := New(tt.perMinute, tt.burst, 100, clk.now)
			for i, s := range tt.steps {
				clk.advance(s.advance)
				ok, wait := l.Allow(s.key)
				if ok != s.allowed {
					t.Fatalf("step %d (%s): allowed %v, want %v", i, s.key, ok, s.allowed)
				}
				if !ok && (wait < s.wait-time.Millisecond || wait > s.wait+time.Millisecond) {
					t.Fatalf("step %d (%s): wait %s, want %s", i, s.key, wait, s.wait)
				}
			}
		})
	}
}

func TestOff(t *testing.T) {
	for _, pm := range []int{0, -1} {
		if l := New(pm, 5, 10, time.Now); l != nil {
			t.Errorf("perMinute %d: limiter is on", pm)
		}
	}
}

// The table of keys never grows past maxKeys, idle keys are forgotten, and
// a full table drops the least recently seen key.
func TestBoundedMemory(t *testing.T) {
	clk := &manualClock{t: time.Unix(1e9, 0)}
	l := New(60, 2, 3, clk.now) // idle after 2s
	for i := range 50 {
		l.Allow("k" + strconv.Itoa(i))
		if n := l.Len(); n > 3 {
			t.Fatalf("after %d keys the table holds %d entries, want at most 3", i+1, n)
		}
	}
	// k49 was seen last and keeps its spent token; an evicted key would
	// start with a full bucket.
	l.Allow("k49")
	if ok, _ := l.Allow("k49"); ok {
		t.Error("k49 was evicted although it was the most recently seen")
	}
	clk.advance(3 * time.Second)
	l.Allow("fresh")
	if n := l.Len(); n != 1 {
		t.Errorf("after the idle time the table holds %d entries, want 1", n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {59500 * time.Millisecond, 60}} {
		if got := RetryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("RetryAfterSeconds(%s) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
