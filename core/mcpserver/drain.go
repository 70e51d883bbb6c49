package mcpserver

import (
	"context"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Drain prepares a graceful shutdown. The HTTP server's Shutdown waits for
// every open request, and the long-lived ones would hold it until its
// deadline: a stateful session's GET stream, an SSE stream and a
// 2026-07-28 subscriptions/listen stream never finish on their own. So
// Drain waits until no tool call is running and no POST to a stateful
// session is being answered (or ctx ends), then closes every open session
// and stream. Their clients see the stream end and
// reconnect, through the load balancer, to a replica that is not shutting
// down: a stateful client's next request with the old Mcp-Session-Id gets
// 404 there and it initializes a new session, as the MCP transport
// specification asks.
//
// Call it when the shutdown starts (http.Server.RegisterOnShutdown), after
// the listener stopped accepting connections. Calls that arrive while
// Drain waits are waited for as well. On the legacy SSE transport a call's
// result travels on the stream the drain closes; one that finishes in the
// instant before may be lost, and the client retries it.
func (s *Server) Drain(ctx context.Context) {
	for ctx.Err() == nil {
		s.calls.wait(ctx)
		s.posts.wait(ctx)
		if s.calls.idle() && s.posts.idle() {
			break
		}
	}
	s.sessMu.RLock()
	open := make([]*mcp.ServerSession, 0, len(s.sessions))
	for ss := range s.sessions {
		open = append(open, ss)
	}
	s.sessMu.RUnlock()
	s.sse.closeAll()
	for _, ss := range open {
		_ = ss.Close()
	}
	if n := len(open); n > 0 {
		s.log.Info("mcpserver: draining: closed the open sessions and streams; their clients reconnect elsewhere", "sessions", n)
	}
}

// inflight counts running calls or requests and lets Drain wait for none.
type inflight struct {
	mu      sync.Mutex
	n       int
	waiters []chan struct{} // closed when n drops to zero
}

func (f *inflight) begin() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 {
		for _, c := range f.waiters {
			close(c)
		}
		f.waiters = nil
	}
}

func (f *inflight) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n == 0
}

// wait returns when no call is running or ctx is done.
func (f *inflight) wait(ctx context.Context) {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return
	}
	c := make(chan struct{})
	f.waiters = append(f.waiters, c)
	f.mu.Unlock()
	select {
	case <-c:
	case <-ctx.Done():
	}
}
