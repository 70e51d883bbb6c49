package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/toolgate/toolgate/core/replica"
	"github.com/toolgate/toolgate/core/store"
)

// Client calls the admin API of a running server; the CLI uses it.
type Client struct {
	// BaseURL is the admin listener's URL, such as "http://127.0.0.1:8789".
	BaseURL string
	// Token is the admin token (LoadOrCreateToken on the data directory).
	Token string
	// HTTPClient is used for requests. Default: a client with a 10 s timeout.
	HTTPClient *http.Client
}

// ListGrants lists live grants, only those of the user with email when it
// is not empty.
func (c *Client) ListGrants(ctx context.Context, email string) ([]Grant, error) {
	var out []Grant
	q := ""
	if email != "" {
		q = "?user=" + url.QueryEscape(email)
	}
	return out, c.do(ctx, http.MethodGet, "/v1/grants"+q, &out)
}

// RevokeGrant revokes one grant.
func (c *Client) RevokeGrant(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/grants/"+url.PathEscape(id), nil)
}

// RevokeUserGrants revokes every grant of the user with email and returns
// how many there were.
func (c *Client) RevokeUserGrants(ctx context.Context, email string) (int, error) {
	var out Revoked
	err := c.do(ctx, http.MethodDelete, "/v1/grants?user="+url.QueryEscape(email), &out)
	return out.Revoked, err
}

// ListClients lists registered clients.
func (c *Client) ListClients(ctx context.Context) ([]ClientInfo, error) {
	var out []ClientInfo
	return out, c.do(ctx, http.MethodGet, "/v1/clients", &out)
}

// DeleteClient deletes a client with its grants and tokens.
func (c *Client) DeleteClient(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/clients?id="+url.QueryEscape(id), nil)
}

// ListReplicas lists the live replicas sharing the server's store, sorted
// by id, each with the plugin set it serves.
func (c *Client) ListReplicas(ctx context.Context) ([]replica.Info, error) {
	var out []replica.Info
	return out, c.do(ctx, http.MethodGet, "/v1/replicas", &out)
}

// ListAudit lists the audit records q selects, newest first. A zero
// q.Limit means the server's default (DefaultAuditLimit); q.Limit must not
// exceed MaxAuditLimit.
func (c *Client) ListAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error) {
	path := "/v1/audit"
	if v := auditValues(q); len(v) > 0 {
		path += "?" + v.Encode()
	}
	var entries []AuditEntry
	if err := c.do(ctx, http.MethodGet, path, &entries); err != nil {
		return nil, err
	}
	out := make([]store.AuditRecord, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Record())
	}
	return out, nil
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s %s: %w (is toolgate serve running?)", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e errorBody
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("admin %s %s: %s (status %d)", method, path, e.Error, resp.StatusCode)
		}
		return fmt.Errorf("admin %s %s: status %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("admin %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}
