package mcpserver

import (
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// outcomeRateLimited is the audit outcome of a call refused by the
// per-user limit.
const outcomeRateLimited = "rate_limited"

// DefaultMaxRateLimitedUsers bounds the users whose call budget is
// tracked at once.
const DefaultMaxRateLimitedUsers = 100000

// userLimiter holds one token bucket per user. Its memory is bounded: a
// bucket idle long enough to be full again is forgotten (a fresh one
// behaves the same), and when maxUsers buckets exist the least recently
// used one is dropped.
type userLimiter struct {
	limit    rate.Limit
	burst    int
	maxUsers int
	idle     time.Duration
	now      func() time.Time

	mu        sync.Mutex
	buckets   map[string]*userBucket
	lastSweep time.Time
}

type userBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// newUserLimiter allows perMinute calls a minute per user with bursts of
// burst (at least 1); nil (no limit) when perMinute is not positive.
func newUserLimiter(perMinute, burst, maxUsers int, now func() time.Time) *userLimiter {
	if perMinute <= 0 {
		return nil
	}
	burst = max(burst, 1)
	lim := rate.Limit(float64(perMinute) / 60)
	return &userLimiter{
		limit:    lim,
		burst:    burst,
		maxUsers: max(maxUsers, 1),
		idle:     time.Duration(float64(burst) / float64(lim) * float64(time.Second)),
		now:      now,
		buckets:  map[string]*userBucket{},
	}
}

// allow takes a token from user's bucket; when none is left it returns
// false and how long until one is.
func (l *userLimiter) allow(user string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.idle {
		l.sweep(now)
	}
	b, ok := l.buckets[user]
	if !ok {
		if len(l.buckets) >= l.maxUsers {
			l.sweep(now)
			if len(l.buckets) >= l.maxUsers {
				l.evictOldest()
			}
		}
		b = &userBucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[user] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *userLimiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.seen) >= l.idle {
			delete(l.buckets, k)
		}
	}
}

func (l *userLimiter) evictOldest() {
	var oldest string
	var at time.Time
	for k, b := range l.buckets {
		if oldest == "" || b.seen.Before(at) {
			oldest, at = k, b.seen
		}
	}
	delete(l.buckets, oldest)
}

func (l *userLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// retryAfterSeconds is a wait in whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int64 {
	return max(int64(math.Ceil(d.Seconds())), 1)
}

// rateLimitedMessage is the tool error text of a refused call.
func rateLimitedMessage(tool string, wait time.Duration) string {
	return tool + ": too many tool calls; retry after " + strconv.FormatInt(retryAfterSeconds(wait), 10) + " seconds"
}
