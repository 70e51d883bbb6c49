package plugin

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeClock is an injected clock for idle times.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// burst takes n instances of the plugin serving tool at once, as n
// concurrent calls would, and returns them.
func burst(t *testing.T, h *testHost, tool string, n int) (*loadedPlugin, []*instance) {
	t.Helper()
	s := h.acquireSet()
	if s == nil {
		t.Fatal("no plugin set")
	}
	t.Cleanup(func() { s.release(context.Background()) })
	p := s.tools[tool]
	insts := make([]*instance, n)
	for i := range insts {
		inst, err := p.acquire(context.Background())
		if err != nil {
			t.Fatalf("acquire %d: %v", i, err)
		}
		insts[i] = inst
	}
	return p, insts
}

func TestIdleShrink(t *testing.T) {
	const ttl = time.Minute
	tests := []struct {
		name     string
		burst    int // instances created at once
		held     int // of them still serving a call while the reaper runs
		idleFor  time.Duration
		wantLive float64
	}{
		{"burst idles past the ttl", 4, 0, ttl + time.Second, 1},
		{"idle exactly the ttl", 4, 0, ttl, 4},
		{"idle well within the ttl", 3, 0, ttl / 2, 3},
		{"an instance in use is kept", 4, 1, ttl + time.Second, 2},
		{"every instance in use", 4, 4, 10 * ttl, 4},
		{"the last instance stays", 1, 0, 10 * ttl, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			h := echoAndFaulty(t, nil, func(c *Config) {
				c.PoolSize = 4
				// The ticker never fires in the test; it calls reapIdle.
				c.IdleInstanceTTL = ttl
				c.now = clock.now
			})
			live := h.metrics.instances.WithLabelValues("echo")
			p, insts := burst(t, h, "echo", tt.burst)
			if got := metricValue(live); got != float64(tt.burst) {
				t.Fatalf("after the burst: %v live instances, want %d", got, tt.burst)
			}
			for _, inst := range insts[tt.held:] {
				p.release(context.Background(), inst, true)
			}
			clock.advance(tt.idleFor)
			h.reapIdle(ttl)
			if got := metricValue(live); got != tt.wantLive {
				t.Errorf("after idling %s: %v live instances, want %v", tt.idleFor, got, tt.wantLive)
			}
			for _, inst := range insts[:tt.held] {
				p.release(context.Background(), inst, true)
			}
			// A call after the shrink still works and reuses a warm
			// instance instead of adding one.
			before := metricValue(live)
			mustCall(t, h, "echo", `{"x":1}`, `{"x":1}`)
			if got := metricValue(live); got != before {
				t.Errorf("a call after the shrink changed the live instances from %v to %v", before, got)
			}
		})
	}
}

// The newest instance is handed out first, so under a trickle of calls
// the others still idle out.
func TestIdleShrinkUnderTrickle(t *testing.T) {
	const ttl = time.Minute
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h := echoAndFaulty(t, nil, func(c *Config) {
		c.PoolSize = 4
		c.IdleInstanceTTL = ttl
		c.now = clock.now
	})
	live := h.metrics.instances.WithLabelValues("echo")
	p, insts := burst(t, h, "echo", 4)
	for _, inst := range insts {
		p.release(context.Background(), inst, true)
	}
	for range 4 {
		clock.advance(ttl / 3)
		mustCall(t, h, "echo", `{"x":1}`, `{"x":1}`)
		h.reapIdle(ttl)
	}
	if got := metricValue(live); got != 1 {
		t.Errorf("after a trickle of calls: %v live instances, want 1", got)
	}
}

// The host's own ticker shrinks the pool: fake time in a synctest bubble
// lets the TTL pass without waiting.
func TestIdleReaperTicker(t *testing.T) {
	wasm := testWasm(t, "echo")
	synctest.Test(t, func(t *testing.T) {
		dropIn := t.TempDir()
		copyFile(t, wasm, dropIn+"/echo.wasm")
		h := mustTestHost(t, nil, dropIn, func(c *Config) {
			c.PoolSize = 3
			c.IdleInstanceTTL = time.Minute
		})
		live := h.metrics.instances.WithLabelValues("echo")
		s := h.acquireSet()
		p := s.tools["echo"]
		var insts []*instance
		for range 3 {
			inst, err := p.acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			insts = append(insts, inst)
		}
		for _, inst := range insts {
			p.release(context.Background(), inst, true)
		}
		s.release(context.Background())
		if got := metricValue(live); got != 3 {
			t.Fatalf("after the burst: %v live instances, want 3", got)
		}
		time.Sleep(time.Minute + time.Minute/2 + time.Second)
		synctest.Wait()
		if got := metricValue(live); got != 1 {
			t.Errorf("after 1.5 TTL idle: %v live instances, want 1", got)
		}
		mustCall(t, h, "echo", `{"x":2}`, `{"x":2}`)
	})
}

func TestIdleInstanceTTLDefaults(t *testing.T) {
	tests := []struct {
		name       string
		ttl        time.Duration
		want       time.Duration
		wantReaper bool
	}{
		{"zero is the default", 0, DefaultIdleInstanceTTL, true},
		{"positive is kept", 5 * time.Second, 5 * time.Second, true},
		{"negative never shrinks", -1, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustTestHost(t, nil, "", func(c *Config) { c.IdleInstanceTTL = tt.ttl })
			if h.cfg.IdleInstanceTTL != tt.want {
				t.Errorf("IdleInstanceTTL = %s, want %s", h.cfg.IdleInstanceTTL, tt.want)
			}
			if got := h.stopReaper != nil; got != tt.wantReaper {
				t.Errorf("reaper running = %v, want %v", got, tt.wantReaper)
			}
		})
	}
}

// Only a reload that compiled a module cold hands the compiler's garbage
// back to the OS; one served from the compilation cache does not.
func TestFreeOSMemoryAfterLoad(t *testing.T) {
	wasm := testWasm(t, "echo")
	cache := t.TempDir()
	dropIn := t.TempDir()
	copyFile(t, wasm, dropIn+"/echo.wasm")
	tests := []struct {
		name      string
		mutate    func(*Config)
		wantFrees int
	}{
		{"cold compile", nil, 1},
		{"from the cache", nil, 1},
		{"interpreter", func(c *Config) { c.Interpreter = true }, 0},
	}
	// The cases share the cache directory and run in order: the first
	// fills it.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frees := 0
			h := mustTestHost(t, nil, dropIn, func(c *Config) {
				c.CacheDir = cache
				c.freeOSMemory = func() { frees++ }
				if tt.mutate != nil {
					tt.mutate(c)
				}
			})
			if frees != tt.wantFrees {
				t.Errorf("New: FreeOSMemory ran %d times, want %d", frees, tt.wantFrees)
			}
			frees = 0
			if err := h.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			if frees != tt.wantFrees {
				t.Errorf("reload: FreeOSMemory ran %d times, want %d", frees, tt.wantFrees)
			}
		})
	}
}
