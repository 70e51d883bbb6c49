package mcpserver

import (
	"strconv"
	"time"

	"github.com/toolgate/toolgate/core/internal/keyedlimit"
)

// outcomeRateLimited is the audit outcome of a call refused by the
// per-user limit.
const outcomeRateLimited = "rate_limited"

// DefaultMaxRateLimitedUsers bounds the users whose call budget is
// tracked at once.
const DefaultMaxRateLimitedUsers = 100000

// newUserLimiter allows perMinute calls a minute per user with bursts of
// burst; nil (no limit) when perMinute is not positive.
func newUserLimiter(perMinute, burst, maxUsers int, now func() time.Time) *keyedlimit.Limiter {
	return keyedlimit.New(perMinute, burst, maxUsers, now)
}

// retryAfterSeconds is a wait in whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int64 { return keyedlimit.RetryAfterSeconds(d) }

// rateLimitedMessage is the tool error text of a refused call.
func rateLimitedMessage(tool string, wait time.Duration) string {
	return tool + ": too many tool calls; retry after " + strconv.FormatInt(retryAfterSeconds(wait), 10) + " seconds"
}
