package mcpserver

import (
	"mime"
	"net/http"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/gate"
)

// sseHandler serves the legacy HTTP+SSE transport. It replaces the
// go-sdk's SSEHandler, which binds no session to a user: here a session
// belongs to the user whose GET opened it, and a POST to it with another
// user's token is refused with 403.
type sseHandler struct {
	s *Server

	mu       sync.Mutex
	sessions map[string]*sseSession
}

type sseSession struct {
	owner     string // user ID
	transport *mcp.SSEServerTransport
	state     *session
	ss        *mcp.ServerSession
}

func newSSEHandler(s *Server) *sseHandler {
	return &sseHandler{s: s, sessions: map[string]*sseSession{}}
}

func (h *sseHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, ok := h.s.cfg.CallerFromContext(r.Context())
	if !ok || c.UserID == "" {
		http.Error(w, "no verified caller", http.StatusUnauthorized)
		return
	}
	switch r.Method {
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			http.Error(w, "Content-Type must be 'application/json'", http.StatusUnsupportedMediaType)
			return
		}
		id := r.URL.Query().Get("sessionid")
		if id == "" {
			http.Error(w, "sessionid must be provided", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		sess := h.sessions[id]
		h.mu.Unlock()
		if sess == nil {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		if sess.owner != c.UserID {
			http.Error(w, "session user mismatch", http.StatusForbidden)
			return
		}
		h.s.updateCaller(sess.state, c)
		sess.transport.ServeHTTP(w, r)
	case http.MethodGet:
		h.serveStream(w, r, c.UserID, c)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

// serveStream opens a session and serves its event stream until the
// client goes away or the session ends.
func (h *sseHandler) serveStream(w http.ResponseWriter, r *http.Request, owner string, c gate.Caller) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Connection", "keep-alive")
	id := h.s.newSessionID()
	endpoint := *r.URL
	endpoint.RawQuery = "sessionid=" + id
	sess := &sseSession{
		owner: owner,
		transport: &mcp.SSEServerTransport{
			Endpoint:            endpoint.RequestURI(),
			Response:            w,
			MaxRequestBodyBytes: h.s.cfg.MaxRequestBodyBytes,
		},
		state: &session{grant: grantKey(c), user: c.UserID, caller: c, evictable: true},
	}
	h.mu.Lock()
	h.sessions[id] = sess
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.sessions, id)
		h.mu.Unlock()
	}()
	ss, err := h.s.mcp.Connect(r.Context(), sess.transport, nil)
	if err != nil {
		h.s.log.Error("mcpserver: sse session not started", "err", err)
		http.Error(w, "connection failed", http.StatusInternalServerError)
		return
	}
	sess.state.ss = ss
	h.s.addSession(ss, sess.state)
	h.mu.Lock()
	sess.ss = ss
	h.mu.Unlock()
	defer h.s.forget(ss)
	defer ss.Close()
	ended := make(chan struct{})
	go func() {
		_ = ss.Wait()
		close(ended)
	}()
	select {
	case <-r.Context().Done():
	case <-ended:
	}
}

// closeAll ends every SSE session.
func (h *sseHandler) closeAll() {
	h.mu.Lock()
	var open []*mcp.ServerSession
	for _, sess := range h.sessions {
		if sess.ss != nil {
			open = append(open, sess.ss)
		}
	}
	h.mu.Unlock()
	for _, ss := range open {
		_ = ss.Close()
	}
}
