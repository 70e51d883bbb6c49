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

// rateLimitedMessage is the tool error text of a refused call.
func rateLimitedMessage(tool string, wait time.Duration) string {
	return tool + ": too many tool calls; retry after " + strconv.FormatInt(keyedlimit.RetryAfterSeconds(wait), 10) + " seconds"
}
