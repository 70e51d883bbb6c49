// Package admin is the operator's control channel into a running toolgate:
// list and revoke grants, list and delete clients, read the audit log of
// tool calls and denials, and list the replicas sharing the store with the
// plugin set each serves, while the server runs (the server holds the
// store, so the CLI cannot open it itself).
//
// The composition root serves [NewHandler] on a separate listener bound to
// a loopback address (for example 127.0.0.1:8789), never on the public one.
// Requests must come from a loopback address and carry
// "Authorization: Bearer <token>", where the token is kept in the data
// directory ([LoadOrCreateToken], file admin.token, mode 0600): whoever can
// read the data directory can already read every grant, so the token adds no
// new trust, and a process that cannot read it cannot use the endpoint even
// from the same machine. The CLI (`toolgate grants ...`, `toolgate clients
// ...`, `toolgate audit tail`) uses [Client] with the same token file.
//
// Changes go through the store, so a running auth.Server drops the affected
// cached tokens through store.Watcher.
//
// # Endpoints
//
//	GET    /v1/grants[?user=EMAIL]   list live grants (no upstream secrets)
//	DELETE /v1/grants/{id}           revoke one grant and its tokens
//	DELETE /v1/grants?user=EMAIL     revoke every grant of a user
//	GET    /v1/clients               list registered clients (no secret hashes)
//	DELETE /v1/clients?id=ID         delete a client, its grants and tokens
//	GET    /v1/audit[?since=RFC3339&user=ID&tool=NAME&limit=N]
//	                                 audit records, newest first ([AuditEntry];
//	                                 limit 1–1000, default 50); a bad
//	                                 parameter is 400 with the reason
//	GET    /v1/replicas              the live replicas sharing this store, each
//	                                 with its plugin set ([replica.Info], sorted
//	                                 by id); one replica on Badger
//	GET    /debug/...                [Config.Debug] when set: the server's Go
//	                                 profiles under /debug/pprof/ with
//	                                 server.pprof
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/toolgate/toolgate/core/replica"
	"github.com/toolgate/toolgate/core/store"
)

// TokenFile is the name of the admin token file in the data directory.
const TokenFile = "admin.token"

// LoadOrCreateToken returns the admin token kept in dir, creating the file
// (mode 0600, a fresh 256-bit secret) when it does not exist.
func LoadOrCreateToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("admin token in %s is too short; delete the file to make a new one", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create data directory: %w", err)
	}
	tok := store.NewSecret()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // created concurrently: use that one
		return LoadOrCreateToken(dir)
	}
	if err != nil {
		return "", fmt.Errorf("create admin token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write admin token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return tok, nil
}

// SessionRevoker ends upstream (AuthKit) sessions; *authkit.Upstream
// implements it.
type SessionRevoker interface {
	RevokeSession(ctx context.Context, sessionID string) error
}

// Config configures the admin handler.
type Config struct {
	// Token is the bearer token requests must carry. Required, at least 32
	// characters.
	Token string
	// Sessions, when not nil, also ends the AuthKit session behind each
	// revoked grant (best effort; failures are logged).
	Sessions SessionRevoker
	// Invalidate, when not nil, is told of every grant the handler revoked
	// and every client it deleted, before the handler answers, so that a
	// bearer-token cache in this process (*auth.Server's Invalidate) drops
	// the stale entries at once instead of when the store's change feed
	// (store.Watcher) delivers them: the very next request with a revoked
	// token is refused.
	Invalidate func(store.Change)
	// Logger receives one line per change. Default slog.Default().
	Logger *slog.Logger
	// Debug, when not nil, is served under /debug/ behind the same
	// loopback and token checks as the API (the server's Go profiles,
	// server.pprof).
	Debug http.Handler
}

// Grant is a grant as the admin API shows it: no upstream token or session.
type Grant struct {
	ID             string    `json:"id"`
	ClientID       string    `json:"client_id"`
	UserID         string    `json:"user_id"`
	Email          string    `json:"email"`
	OrganizationID string    `json:"organization_id,omitempty"`
	Role           string    `json:"role,omitempty"`
	Permissions    []string  `json:"permissions"`
	Scopes         []string  `json:"scopes"`
	Resource       string    `json:"resource"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// ClientInfo is a registered client as the admin API shows it: no secret
// hash.
type ClientInfo struct {
	ID                      string    `json:"id"`
	Name                    string    `json:"name,omitempty"`
	URI                     string    `json:"uri,omitempty"`
	RedirectURIs            []string  `json:"redirect_uris"`
	TokenEndpointAuthMethod string    `json:"token_endpoint_auth_method"`
	GrantTypes              []string  `json:"grant_types"`
	CreatedAt               time.Time `json:"created_at"`
	LastUsedAt              time.Time `json:"last_used_at"`
	ExpiresAt               time.Time `json:"expires_at"`
}

// Revoked is the answer to a revocation.
type Revoked struct {
	Revoked int `json:"revoked"`
}

type handler struct {
	cfg Config
	st  store.Store
	mux *http.ServeMux
}

// NewHandler returns the admin API over st.
func NewHandler(cfg Config, st store.Store) (http.Handler, error) {
	if len(cfg.Token) < 32 {
		return nil, errors.New("admin: a token of at least 32 characters is required")
	}
	if st == nil {
		return nil, errors.New("admin: store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &handler{cfg: cfg, st: st, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /v1/grants", h.listGrants)
	h.mux.HandleFunc("DELETE /v1/grants/{id}", h.revokeGrant)
	h.mux.HandleFunc("DELETE /v1/grants", h.revokeUserGrants)
	h.mux.HandleFunc("GET /v1/clients", h.listClients)
	h.mux.HandleFunc("DELETE /v1/clients", h.deleteClient)
	h.mux.HandleFunc("GET /v1/audit", h.listAudit)
	h.mux.HandleFunc("GET /v1/replicas", h.listReplicas)
	if cfg.Debug != nil {
		h.mux.Handle("/debug/", cfg.Debug)
	}
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		writeErr(w, http.StatusForbidden, "the admin API serves loopback clients only")
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(h.cfg.Token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="toolgate-admin"`)
		writeErr(w, http.StatusUnauthorized, "missing or wrong admin token")
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *handler) listGrants(w http.ResponseWriter, r *http.Request) {
	gs, err := h.st.ListGrants(r.Context(), store.GrantFilter{Email: r.URL.Query().Get("user")})
	if err != nil {
		h.fail(w, r, "list grants", err)
		return
	}
	out := make([]Grant, 0, len(gs))
	for _, g := range gs {
		out = append(out, Grant{
			ID: g.ID, ClientID: g.ClientID, UserID: g.UserID, Email: g.Email, OrganizationID: g.OrganizationID,
			Role: g.Role, Permissions: g.Permissions, Scopes: g.Scopes, Resource: g.Resource,
			CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt, ExpiresAt: g.ExpiresAt,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) revokeGrant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	g, err := h.st.GetGrant(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		writeErr(w, http.StatusNotFound, "no such grant")
		return
	}
	if err != nil {
		h.fail(w, r, "load grant", err)
		return
	}
	if err := h.revoke(r.Context(), g); err != nil {
		h.fail(w, r, "revoke grant", err)
		return
	}
	writeJSON(w, http.StatusOK, Revoked{Revoked: 1})
}

func (h *handler) revokeUserGrants(w http.ResponseWriter, r *http.Request) {
	email := r.URL.Query().Get("user")
	if email == "" {
		writeErr(w, http.StatusBadRequest, "user (an email address) is required")
		return
	}
	gs, err := h.st.ListGrants(r.Context(), store.GrantFilter{Email: email})
	if err != nil {
		h.fail(w, r, "list grants", err)
		return
	}
	n := 0
	for _, g := range gs {
		if err := h.revoke(r.Context(), g); err != nil {
			h.fail(w, r, "revoke grant", err)
			return
		}
		n++
	}
	writeJSON(w, http.StatusOK, Revoked{Revoked: n})
}

// invalidate passes a committed change to Config.Invalidate.
func (h *handler) invalidate(ch store.Change) {
	if h.cfg.Invalidate != nil {
		h.cfg.Invalidate(ch)
	}
}

// revoke deletes a grant and its tokens, then ends its upstream session.
func (h *handler) revoke(ctx context.Context, g store.Grant) error {
	if err := h.st.RevokeGrant(ctx, g.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	h.invalidate(store.Change{Kind: store.ChangeGrantRevoked, ID: g.ID})
	h.cfg.Logger.InfoContext(ctx, "admin: grant revoked", "grant_id", g.ID, "user_id", g.UserID, "client_id", g.ClientID)
	if h.cfg.Sessions != nil && g.UpstreamSessionID != "" {
		if err := h.cfg.Sessions.RevokeSession(ctx, g.UpstreamSessionID); err != nil {
			h.cfg.Logger.WarnContext(ctx, "admin: end upstream session", "grant_id", g.ID, "err", err)
		}
	}
	return nil
}

func (h *handler) listClients(w http.ResponseWriter, r *http.Request) {
	cs, err := h.st.ListClients(r.Context())
	if err != nil {
		h.fail(w, r, "list clients", err)
		return
	}
	out := make([]ClientInfo, 0, len(cs))
	for _, c := range cs {
		out = append(out, ClientInfo{
			ID: c.ID, Name: c.Name, URI: c.URI, RedirectURIs: c.RedirectURIs, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
			GrantTypes: c.GrantTypes, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt, ExpiresAt: c.ExpiresAt,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) deleteClient(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		writeErr(w, http.StatusBadRequest, "id is required")
		return
	}
	err := h.st.DeleteClient(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		writeErr(w, http.StatusNotFound, "no such client")
		return
	}
	if err != nil {
		h.fail(w, r, "delete client", err)
		return
	}
	h.invalidate(store.Change{Kind: store.ChangeClientDeleted, ID: id})
	h.cfg.Logger.InfoContext(r.Context(), "admin: client deleted", "client_id", id)
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) listReplicas(w http.ResponseWriter, r *http.Request) {
	rs, err := replica.List(r.Context(), h.st)
	if err != nil && rs == nil {
		h.fail(w, r, "list replicas", err)
		return
	}
	if err != nil { // some records could not be decoded: show the others
		h.cfg.Logger.WarnContext(r.Context(), "admin: list replicas", "err", err)
	}
	if rs == nil {
		rs = []replica.Info{}
	}
	writeJSON(w, http.StatusOK, rs)
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	h.cfg.Logger.ErrorContext(r.Context(), "admin: "+op, "err", err)
	writeErr(w, http.StatusInternalServerError, op+" failed")
}

type errorBody struct {
	Error string `json:"error"`
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
