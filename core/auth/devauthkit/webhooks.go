package devauthkit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// webhookTimeout bounds one webhook delivery.
const webhookTimeout = 10 * time.Second

// WebhookSignatureHeader is the header deliveries are signed in, as WorkOS
// signs them: "t=<unix milliseconds>, v1=<hex HMAC-SHA256 over
// "<t>.<body>" keyed with the webhook secret>".
const WebhookSignatureHeader = "WorkOS-Signature"

// SignWebhook returns the WorkOS-Signature header value for body sent at t
// with secret, in WorkOS's scheme (which workos-go's webhooks client
// verifies).
func SignWebhook(secret string, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ", v1=" + hex.EncodeToString(mac.Sum(nil))
}

// webhookTarget is where events go; nil when Config.WebhookURL is empty.
type webhookTarget struct {
	url    string
	secret string
	client *http.Client
}

func newWebhookTarget(cfg Config) (*webhookTarget, error) {
	if cfg.WebhookURL == "" {
		return nil, nil
	}
	u, err := url.Parse(cfg.WebhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook url %q is not an absolute http(s) URL", cfg.WebhookURL)
	}
	if err := CheckLoopback(u.Host); err != nil {
		return nil, fmt.Errorf("webhook url: %w", err)
	}
	if cfg.WebhookSecret == "" {
		return nil, errors.New("a webhook url needs a webhook secret")
	}
	c := cfg.WebhookClient
	if c == nil {
		c = &http.Client{Timeout: webhookTimeout}
	}
	return &webhookTarget{url: cfg.WebhookURL, secret: cfg.WebhookSecret, client: c}, nil
}

// SetWebhookDelivery turns the delivery of webhook events on or off (on
// when Config.WebhookURL is set), as registering or removing the endpoint
// in the WorkOS dashboard would. Off, toolgate learns of ended sessions and
// changed permissions only when it refreshes.
func (s *Server) SetWebhookDelivery(on bool) {
	s.webhooksOff.Store(!on)
}

// deliver sends one event of type typ about data to the webhook URL and
// waits for the answer: any status other than 2xx is an error. Without a
// webhook URL, or with delivery turned off, it does nothing.
func (s *Server) deliver(ctx context.Context, typ string, data map[string]any) error {
	if s.webhook == nil || s.webhooksOff.Load() {
		return nil
	}
	now := s.now().UTC()
	body, err := json.Marshal(map[string]any{
		"object":     "event",
		"id":         "event_" + randomID(),
		"event":      typ,
		"data":       data,
		"created_at": now.Format("2006-01-02T15:04:05.000Z07:00"),
	})
	if err != nil {
		return fmt.Errorf("devauthkit: webhook %s: %w", typ, err)
	}
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.webhook.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("devauthkit: webhook %s: %w", typ, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(WebhookSignatureHeader, SignWebhook(s.webhook.secret, body, now))
	resp, err := s.webhook.client.Do(req)
	if err != nil {
		return fmt.Errorf("devauthkit: webhook %s: %w", typ, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("devauthkit: webhook %s: endpoint answered %s", typ, resp.Status)
	}
	s.logger.Debug("devauthkit: webhook delivered", "event", typ)
	return nil
}

// sessionRevoked delivers session.revoked for sess, whose user is u (nil
// when the user is no longer configured).
func (s *Server) sessionRevoked(ctx context.Context, sess *session, u *user) error {
	data := map[string]any{"object": "session", "id": sess.id, "status": "revoked"}
	if u != nil {
		data["user_id"] = u.id
		if u.orgID != "" {
			data["organization_id"] = u.orgID
		}
	}
	return s.deliver(ctx, "session.revoked", data)
}

// roleUpdated delivers the event WorkOS sends when a role's permissions
// are edited: organization_role.updated for a role of an organization,
// role.updated for an environment role.
func (s *Server) roleUpdated(ctx context.Context, orgID, slug string, permissions []string) error {
	data := map[string]any{"object": "role", "slug": slug, "permissions": permissions}
	if orgID == "" {
		return s.deliver(ctx, "role.updated", data)
	}
	data["organization_id"] = orgID
	return s.deliver(ctx, "organization_role.updated", data)
}
