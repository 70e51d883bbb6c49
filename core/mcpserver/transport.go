package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// newestStatelessVersion is the first protocol revision without sessions;
// the go-sdk serves it only from a stateless handler.
const newestStatelessVersion = "2026-07-28"

// Header names of the streamable HTTP transport.
const (
	headerSessionID       = "Mcp-Session-Id"
	headerProtocolVersion = "Mcp-Protocol-Version"
)

// transports are the HTTP handlers of the server.
type transports struct {
	hosts     []hostRule
	origins   []string
	mcp       http.Handler // guarded, routed streamable HTTP
	sseRouted http.Handler // guarded SSE
}

func (s *Server) initTransports(hosts []hostRule, origins []string) {
	// DisableLocalhostProtection: the go-sdk's check refuses a loopback
	// socket with a non-loopback Host, which breaks a reverse proxy on the
	// same machine; guard() does a configurable check instead.
	stateful := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp }, &mcp.StreamableHTTPOptions{
		Logger:                     s.sdkLog,
		SessionTimeout:             s.cfg.SessionIdleTimeout,
		DisableLocalhostProtection: true,
		MaxRequestBodyBytes:        s.cfg.MaxRequestBodyBytes,
	})
	stateless := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp }, &mcp.StreamableHTTPOptions{
		Stateless:                    true,
		Logger:                       s.sdkLog,
		DisableLocalhostProtection:   true,
		MaxRequestBodyBytes:          s.cfg.MaxRequestBodyBytes,
		PropagateRequestCancellation: true,
	})
	withStateful := s.withCaller(true, stateful)
	withStateless := s.withCaller(false, stateless)
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch s.routeStateful(w, r) {
		case routeStateful:
			if r.Method == http.MethodPost {
				// Its answer ends the request; Drain waits for it
				// before closing the session.
				s.posts.begin()
				defer s.posts.end()
			}
			withStateful.ServeHTTP(w, r)
		case routeStateless:
			withStateless.ServeHTTP(w, r)
		}
	})
	s.transports = transports{hosts: hosts, origins: origins}
	s.transports.mcp = s.Guard(route)
	s.transports.sseRouted = s.Guard(s.sse)
}

// Handler serves the streamable HTTP transport at /mcp (POST, GET and
// DELETE). It must sit behind the bearer middleware. See the package
// documentation for how it picks stateful or stateless handling.
func (s *Server) Handler() http.Handler { return s.transports.mcp }

// SSEHandler serves the legacy HTTP+SSE transport (2024-11-05): GET opens
// a session's event stream, whose first event names the message endpoint
// (the same path with ?sessionid=...), and POSTs to it carry the client's
// messages. It must sit behind the bearer middleware.
func (s *Server) SSEHandler() http.Handler { return s.transports.sseRouted }

type route int

const (
	routeDone route = iota // the response is written
	routeStateful
	routeStateless
)

// routeStateful decides which handler serves r:
//
//   - a request naming a session (Mcp-Session-Id), and any GET or DELETE,
//     go to the stateful handler, which owns the sessions (and answers a
//     GET or DELETE without one with 400);
//   - a POST at 2026-07-28 or later (by its Mcp-Protocol-Version header)
//     goes to the stateless handler, the only one the go-sdk serves that
//     revision from;
//   - any other POST is an initialize (a 2025-xx client opening a session:
//     stateful) or a lone request without a session (stateless), which
//     only the body tells apart.
func (s *Server) routeStateful(w http.ResponseWriter, r *http.Request) route {
	if r.Method != http.MethodPost || r.Header.Get(headerSessionID) != "" {
		return routeStateful
	}
	if v := r.Header.Get(headerProtocolVersion); v >= newestStatelessVersion {
		return routeStateless
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("request body exceeds %d bytes", mbe.Limit), http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "cannot read the request body", http.StatusBadRequest)
		}
		return routeDone
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if isInitialize(body) {
		return routeStateful
	}
	return routeStateless
}

// initializeMethod is the JSON string of the method that opens a session.
var initializeMethod = []byte(`"initialize"`)

// isInitialize reports whether body is a single JSON-RPC request whose
// method is "initialize". Batches are not (the go-sdk refuses them from
// 2025-06-18 on, and an initialize must be sent alone).
func isInitialize(body []byte) bool {
	if !bytes.Contains(body, initializeMethod) {
		return false
	}
	var msg struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(body, &msg) != nil {
		return false
	}
	return msg.Method == "initialize"
}

// withCaller puts the verified caller into the request in the form the
// go-sdk carries to handlers: a TokenInfo whose UserID binds sessions to
// their user (the stateful handler answers another user's request on a
// session with 403) and whose Extra holds the caller for the gate. It
// goes through the go-sdk's RequireBearerToken, the only way to set that
// TokenInfo, so the request must carry its Authorization: Bearer header
// (the bearer middleware in front has verified it; this layer does not).
func (s *Server) withCaller(stateful bool, next http.Handler) http.Handler {
	return sdkauth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*sdkauth.TokenInfo, error) {
		c, ok := s.cfg.CallerFromContext(ctx)
		if !ok || c.UserID == "" {
			return nil, fmt.Errorf("%w: no verified caller", sdkauth.ErrInvalidToken)
		}
		ti := &sdkauth.TokenInfo{UserID: c.UserID, Extra: map[string]any{extraCaller: &c, extraStateful: stateful}}
		if prev := sdkauth.TokenInfoFromContext(ctx); prev != nil {
			ti.Scopes, ti.Expiration = prev.Scopes, prev.Expiration
		}
		return ti, nil
	}, &sdkauth.RequireBearerTokenOptions{AllowMissingExpiration: true})(next)
}

// Guard checks the Host and Origin headers (DNS-rebinding protection, MCP
// transport security: an invalid Origin gets 403) and the header size (431).
// Handler and SSEHandler include it; mount it also in front of the bearer
// middleware so a bad Origin gets 403 before authentication is tried.
func (s *Server) Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r) {
			forbid(w, "invalid Host header")
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && !s.originAllowed(origin, r.Host) {
			forbid(w, "invalid Origin header")
			return
		}
		size := 0
		for k, vs := range r.Header {
			for _, v := range vs {
				size += len(k) + len(v)
			}
		}
		if size > s.cfg.MaxHeaderBytes {
			http.Error(w, "request headers too large", http.StatusRequestHeaderFieldsTooLarge)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// forbid answers 403 with a JSON-RPC error without an id, as the MCP
// transport specification allows for a refused Origin.
func forbid(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "error": map[string]any{"code": -32600, "message": "Forbidden: " + msg}})
	_, _ = w.Write(b)
}

// hostRule is one entry of Config.AllowedHosts.
type hostRule struct {
	host string // lower-case, IPv6 without brackets
	port string // "" matches any port
}

func parseHosts(entries []string) ([]hostRule, error) {
	rules := make([]hostRule, 0, len(entries))
	for _, e := range entries {
		if strings.TrimSpace(e) == "*" {
			rules = append(rules, hostRule{host: "*"})
			continue
		}
		host, port := splitHost(strings.ToLower(strings.TrimSpace(e)))
		if host == "" || strings.ContainsAny(host, "/@?#") || !allDigits(port) {
			return nil, fmt.Errorf("allowed host %q: want host or host:port", e)
		}
		rules = append(rules, hostRule{host: host, port: port})
	}
	return rules, nil
}

// allDigits reports whether a port is empty or a decimal number.
func allDigits(port string) bool {
	for _, r := range port {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// splitHost splits "host[:port]" ("[v6]:port" too) without failing on a
// missing port.
func splitHost(hostport string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return strings.Trim(h, "[]"), p
	}
	return strings.Trim(hostport, "[]"), ""
}

func (s *Server) hostAllowed(r *http.Request) bool {
	host, port := splitHost(strings.ToLower(r.Host))
	if len(s.transports.hosts) == 0 {
		local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if !ok || local == nil {
			return true
		}
		lh, _ := splitHost(local.String())
		return !isLoopback(lh) || isLoopback(host)
	}
	return slices.ContainsFunc(s.transports.hosts, func(h hostRule) bool {
		return h.host == "*" || (h.host == host && (h.port == "" || h.port == port))
	})
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseOrigins(entries []string) ([]string, error) {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		o, ok := normalizeOrigin(e)
		if !ok {
			return nil, fmt.Errorf("allowed origin %q: want scheme://host[:port]", e)
		}
		out = append(out, o)
	}
	return out, nil
}

// normalizeOrigin returns an origin as "scheme://host[:port]" in lower
// case, or false if it is not one (including "null").
func normalizeOrigin(origin string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(origin))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}

// originAllowed accepts the request's own origin (its Host, already
// checked) and the configured ones.
func (s *Server) originAllowed(origin, requestHost string) bool {
	o, ok := normalizeOrigin(origin)
	if !ok {
		return false
	}
	if slices.Contains(s.transports.origins, o) {
		return true
	}
	_, hostport, _ := strings.Cut(o, "://")
	return hostport == strings.ToLower(requestHost)
}
