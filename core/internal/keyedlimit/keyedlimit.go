// Package keyedlimit is a set of token buckets keyed by a string (a client
// address, a user), with bounded memory. The sign-in endpoints limit per
// client IP with it and the MCP endpoint limits tool calls per user.
package keyedlimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter holds one token bucket per key. A bucket that has been idle long
// enough to be full again is forgotten (a fresh one behaves the same), and
// when maxKeys buckets exist the least recently used one is dropped to make
// room. It is safe for concurrent use.
type Limiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int
	idle    time.Duration // a bucket unused this long is full again
	now     func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// New returns a limiter allowing perMinute events a minute per key with
// bursts of burst (at least 1), tracking at most maxKeys keys (at least 1),
// or nil when perMinute is not positive (no limit). now is the clock.
func New(perMinute, burst, maxKeys int, now func() time.Time) *Limiter {
	if perMinute <= 0 {
		return nil
	}
	burst = max(burst, 1)
	lim := rate.Limit(float64(perMinute) / 60)
	return &Limiter{
		limit:   lim,
		burst:   burst,
		maxKeys: max(maxKeys, 1),
		idle:    time.Duration(float64(burst) / float64(lim) * float64(time.Second)),
		now:     now,
		buckets: map[string]*bucket{},
	}
}

// Allow takes a token from key's bucket. When none is left it returns
// false and how long until one is; a refused event takes nothing.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.idle {
		l.sweep(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.maxKeys {
			l.sweep(now)
			if len(l.buckets) >= l.maxKeys {
				l.evictOldest()
			}
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Len is the number of keys tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// sweep forgets every bucket idle long enough to be full again.
func (l *Limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.seen) >= l.idle {
			delete(l.buckets, k)
		}
	}
}

// evictOldest drops the least recently used bucket.
func (l *Limiter) evictOldest() {
	var oldest string
	var at time.Time
	for k, b := range l.buckets {
		if oldest == "" || b.seen.Before(at) {
			oldest, at = k, b.seen
		}
	}
	delete(l.buckets, oldest)
}

// RetryAfterSeconds is a wait in whole seconds, rounded up, at least 1: the
// value of a Retry-After header or a "retry after N seconds" message.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(int64(math.Ceil(d.Seconds())), 1)
}
