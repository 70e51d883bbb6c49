package plugin

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
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
		name     string
		ttl      time.Duration
		want     time.Duration
		wantTick time.Duration
	}{
		{"zero is the default", 0, DefaultIdleInstanceTTL, 5 * time.Second},
		{"a long ttl ticks every 5s", time.Hour, time.Hour, 5 * time.Second},
		{"a short ttl ticks every ttl/2", 4 * time.Second, 4 * time.Second, 2 * time.Second},
		// The loop still runs, to return memory once calls stop.
		{"negative never shrinks", -1, -1, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustTestHost(t, nil, "", func(c *Config) { c.IdleInstanceTTL = tt.ttl })
			if h.cfg.IdleInstanceTTL != tt.want {
				t.Errorf("IdleInstanceTTL = %s, want %s", h.cfg.IdleInstanceTTL, tt.want)
			}
			if h.stopReaper == nil {
				t.Error("the idle loop is not running")
			}
			if got := idleTick(h.cfg.IdleInstanceTTL); got != tt.wantTick {
				t.Errorf("idle tick = %s, want %s", got, tt.wantTick)
			}
		})
	}
}

// When calls stop, the idle loop replaces an idle instance whose linear
// memory grew and returns freed memory to the OS, once per quiet spell.
// Fake time in a synctest bubble lets the ticks pass without waiting.
func TestIdleMemoryRelease(t *testing.T) {
	// Build the guests outside the bubble.
	testWasm(t, "echo")
	faultyEntry(t)
	synctest.Test(t, func(t *testing.T) {
		var frees atomic.Int32
		h := echoAndFaulty(t, nil, func(c *Config) {
			c.freeOSMemory = func() { frees.Add(1) }
		})
		p := h.cur.Load().tools["grow"]
		fresh := float64(p.freshMemory)
		if fresh == 0 {
			t.Fatal("the memory of a fresh instance was not measured")
		}
		linear := h.metrics.linear.WithLabelValues("faulty")
		live := h.metrics.instances.WithLabelValues("faulty")
		if got := metricValue(linear); got != fresh {
			t.Fatalf("linear memory after load = %v, want %v", got, fresh)
		}
		tick := idleTick(DefaultIdleInstanceTTL)
		loaded := frees.Load()

		// Grow the instance past twice its fresh size (but below half
		// the 64 MiB limit, so it goes back to the pool).
		mustCall(t, h, "grow", fmt.Sprintf(`{"n":%d}`, int(fresh)>>20+2), "grew")
		grown := metricValue(linear)
		if grown <= 2*fresh {
			t.Fatalf("linear memory after grow = %v, want over %v", grown, 2*fresh)
		}
		synctest.Wait()
		if got := frees.Load() - loaded; got != 0 {
			t.Fatalf("released %d times right after a call, want 0", got)
		}

		time.Sleep(2*tick + time.Second)
		synctest.Wait()
		if got := frees.Load() - loaded; got != 1 {
			t.Fatalf("released %d times after calls stopped, want 1", got)
		}
		if got := metricValue(linear); got != fresh {
			t.Errorf("linear memory once idle = %v, want a fresh instance's %v (grown: %v)", got, fresh, grown)
		}
		if got := metricValue(live); got != 1 {
			t.Errorf("%v live instances once idle, want 1", got)
		}

		// No calls, no more releases.
		time.Sleep(5 * tick)
		synctest.Wait()
		if got := frees.Load() - loaded; got != 1 {
			t.Fatalf("released %d times while idle, want still 1", got)
		}

		// The fresh instance serves, and the next quiet spell releases
		// again.
		mustCall(t, h, "ok", `{}`, "ok user_alice")
		time.Sleep(2*tick + time.Second)
		synctest.Wait()
		if got := frees.Load() - loaded; got != 2 {
			t.Errorf("released %d times after a second quiet spell, want 2", got)
		}
	})
}

// A replacement instance goes into the pool where its idle time keeps the
// stack ordered, so shrinkIdle still finds the expired ones at the bottom.
func TestPutIdleSinceKeepsOrder(t *testing.T) {
	p := &loadedPlugin{poolSize: 4}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, sec := range []int{10, 30, 20, 5} {
		if !p.putIdleSince(&instance{}, base.Add(time.Duration(sec)*time.Second)) {
			t.Fatalf("putIdleSince(%ds) refused", sec)
		}
	}
	if p.putIdleSince(&instance{}, base) {
		t.Error("putIdleSince accepted a fifth instance in a pool of 4")
	}
	var got []int
	for _, inst := range p.idle {
		got = append(got, int(inst.idleSince.Sub(base)/time.Second))
	}
	if want := []int{5, 10, 20, 30}; !slices.Equal(got, want) {
		t.Errorf("idle times = %v, want %v", got, want)
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
