package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// waitSlot under a fake clock: a queued call gets a slot freed in time,
// is busy past the queue timeout or when the queue is full, and follows
// its context.
func TestWaitSlot(t *testing.T) {
	tests := []struct {
		name     string
		maxQueue int
		waiters  int           // calls already waiting
		release  time.Duration // when a running call frees its slot; 0 never
		cancel   time.Duration // when the caller gives up; 0 never
		want     error
		wantAt   time.Duration
	}{
		{name: "slot frees in time", maxQueue: 2, release: 3 * time.Second, want: nil, wantAt: 3 * time.Second},
		{name: "queue timeout", maxQueue: 2, want: errBusy, wantAt: 5 * time.Second},
		{name: "queue full", maxQueue: 1, waiters: 1, want: errBusy, wantAt: 0},
		{name: "no queue", maxQueue: 0, want: errBusy, wantAt: 0},
		{name: "caller cancels", maxQueue: 2, cancel: time.Second, want: context.Canceled, wantAt: time.Second},
		{name: "slot frees after timeout", maxQueue: 2, release: 6 * time.Second, want: errBusy, wantAt: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &loadedPlugin{sem: make(chan struct{}, 1), maxQueue: tt.maxQueue, queueTimeout: 5 * time.Second}
				p.sem <- struct{}{} // the one slot is taken
				p.waiting.Add(int64(tt.waiters))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tt.release > 0 {
					time.AfterFunc(tt.release, func() { <-p.sem })
				}
				if tt.cancel > 0 {
					time.AfterFunc(tt.cancel, cancel)
				}
				start := time.Now()
				err := p.waitSlot(ctx)
				if !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
					t.Fatalf("waitSlot = %v, want %v", err, tt.want)
				}
				if got := time.Since(start); got != tt.wantAt {
					t.Errorf("answered after %s, want %s", got, tt.wantAt)
				}
				if n := p.waiting.Load(); n != int64(tt.waiters) {
					t.Errorf("waiting = %d afterwards, want %d", n, tt.waiters)
				}
			})
		})
	}
}

// A real plugin with one instance, held by a sleeping call: another call
// is answered busy (queue full, or queue timeout), the busy call is
// counted, and once the slot frees calls work again.
func TestPluginBusy(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"no queue", func(c *Config) { c.MaxQueue = -1 }},
		{"queue timeout", func(c *Config) { c.QueueTimeout = time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := echoAndFaulty(t, func(e *PluginEntry) { e.PoolSize = 1 }, tt.mutate)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started := make(chan struct{})
			var once sync.Once
			errc := make(chan error, 1)
			go func() {
				_, err := h.Call(ctx, "slow", json.RawMessage(`{"ms":600000}`), alice, CallOptions{Progress: func(Progress) { once.Do(func() { close(started) }) }})
				errc <- err
			}()
			<-started
			_, err := h.Call(context.Background(), "ok", json.RawMessage(`{}`), alice, CallOptions{})
			if KindOf(err) != ErrKindBusy || !strings.Contains(err.Error(), `plugin "faulty" tool "ok": busy: 1 of 1 instances in use; try again`) {
				t.Fatalf("second call: %v, want busy", err)
			}
			// The echo plugin has its own instances and is not affected.
			mustCall(t, h, "echo", `{"x":1}`, `{"x":1}`)
			cancel()
			if err := <-errc; KindOf(err) != ErrKindCancelled {
				t.Fatalf("sleeping call: %v", err)
			}
			mustCall(t, h, "ok", `{}`, "ok user_alice")
		})
	}
}
