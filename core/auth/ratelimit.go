package auth

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/toolgate/toolgate/core/internal/keyedlimit"
)

// ErrCodeTooManyRequests is the error code of a 429 answer from /register,
// /token, /authorize and /callback. RFC 6749 defines no code for rate
// limiting (slow_down belongs to the device flow, RFC 8628), so toolgate
// uses this one everywhere, together with a Retry-After header.
const ErrCodeTooManyRequests = "too_many_requests"

// retryAfterSeconds renders a wait as a Retry-After value: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(keyedlimit.RetryAfterSeconds(d), 10)
}

// limited wraps an endpoint's handler with the per-client-IP limit. A
// refused request gets 429 with Retry-After: a JSON error body on the JSON
// endpoints (page false), an error page on the browser ones.
func (s *Server) limited(endpoint string, page bool, h http.HandlerFunc) http.HandlerFunc {
	if s.ipLimiter == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ip := clientIP(r, s.cfg.TrustedProxies)
		ok, wait := s.ipLimiter.Allow(endpoint + " " + ip.String())
		if ok {
			h(w, r)
			return
		}
		retry := retryAfterSeconds(wait)
		s.log.WarnContext(r.Context(), "auth: rate limited", "endpoint", endpoint, "client_ip", ip.String(), "retry_after_s", retry)
		e := &Error{Code: ErrCodeTooManyRequests, Description: "too many requests from this address; try again in " + retry + " seconds", Status: http.StatusTooManyRequests, retryAfter: retry}
		if page {
			w.Header().Set("Retry-After", retry)
			renderError(w, e)
			return
		}
		writeError(w, e)
	}
}

// clientIP is the address a request came from. The TCP peer is the client
// unless it is one of the trusted proxies; then X-Forwarded-For is read
// from the right, skipping trusted proxies, and the first other address is
// the client. A malformed entry ends the walk at the last trusted hop, so
// a client cannot choose its own address by forging the header.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	var ip netip.Addr
	if err == nil {
		ip = peer.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		ip = a.Unmap()
	}
	if len(trusted) == 0 || !ip.IsValid() || !inPrefixes(ip, trusted) {
		return ip
	}
	return forwardedFor(r.Header.Values("X-Forwarded-For"), ip, trusted)
}

// forwardedFor walks X-Forwarded-For values (every header line, comma
// separated) from the right, starting from the trusted peer, and returns
// the first address that is not a trusted proxy. It returns the last
// trusted hop when the list runs out or holds something that is not an IP
// address.
func forwardedFor(values []string, peer netip.Addr, trusted []netip.Prefix) netip.Addr {
	last := peer
	for i := len(values) - 1; i >= 0; i-- {
		parts := strings.Split(values[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return last
			}
			a = a.Unmap()
			if !inPrefixes(a, trusted) {
				return a
			}
			last = a
		}
	}
	return last
}

func inPrefixes(ip netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
