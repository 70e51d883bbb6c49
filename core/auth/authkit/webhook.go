package authkit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/workos/workos-go/v4/pkg/webhooks"
)

// WebhookSignatureHeader is the header WorkOS signs webhook deliveries in:
// "t=<unix milliseconds>, v1=<hex HMAC-SHA256 of "<t>.<body>">".
const WebhookSignatureHeader = "WorkOS-Signature"

// WebhookTolerance is how far a delivery's signed timestamp may be from our
// clock: workos-go's default tolerance for old timestamps, which toolgate
// also applies to timestamps in the future.
const WebhookTolerance = 180 * time.Second

// MaxWebhookBody bounds the webhook bodies VerifyWebhook accepts. WorkOS
// events are a few KiB.
const MaxWebhookBody = 256 << 10

// maxWebhookHeader bounds the signature header: "t=" + 19 digits + ", v1="
// + 64 hex digits is 90 bytes.
const maxWebhookHeader = 128

var (
	// ErrWebhookSignature means a delivery was not signed with our webhook
	// secret: no or a malformed signature header, a wrong signature, or a
	// timestamp outside WebhookTolerance. The error says which, for logs;
	// answer the sender without detail.
	ErrWebhookSignature = errors.New("webhook signature invalid")
	// ErrWebhookPayload means a correctly signed delivery is not a WorkOS
	// event (not JSON, no id or event type, oversized).
	ErrWebhookPayload = errors.New("webhook payload invalid")
)

// Event types toolgate acts on (see core/auth's webhook handling). Every
// other type is acknowledged and ignored.
const (
	EventSessionRevoked           = "session.revoked"
	EventUserDeleted              = "user.deleted"
	EventMembershipDeleted        = "organization_membership.deleted"
	EventMembershipRemoved        = "organization_membership.removed" // older name of .deleted
	EventMembershipUpdated        = "organization_membership.updated"
	EventRoleUpdated              = "role.updated"
	EventRoleDeleted              = "role.deleted"
	EventOrganizationRoleUpdated  = "organization_role.updated"
	EventOrganizationRoleDeleted  = "organization_role.deleted"
	EventPermissionDeleted        = "permission.deleted"
	EventPermissionUpdated        = "permission.updated"
	MembershipStatusActive        = "active"
	maxWebhookEventIDLen          = 256
	maxWebhookEventTypeLen        = 128
	maxWebhookEventFieldLen       = 256
	webhookSignatureVersionPrefix = "v1="
)

// WebhookEvent is one verified WorkOS event, reduced to the fields toolgate
// acts on. Which fields are set depends on Type: data is the API object the
// event is about (a session, user, organization membership, role or
// permission).
type WebhookEvent struct {
	// ID is the event id (event_…), the same on every delivery attempt.
	ID string
	// Type is the event name, such as "session.revoked".
	Type string
	// CreatedAt is when the event occurred at WorkOS (zero if absent).
	CreatedAt time.Time
	// ObjectID is data.id: the session, user, membership, role or
	// permission id.
	ObjectID string
	// UserID is data.user_id (sessions, memberships), or data.id for user
	// events.
	UserID string
	// OrganizationID is data.organization_id.
	OrganizationID string
	// Status is data.status (memberships: "active", "inactive", "pending").
	Status string
	// Slug is data.slug (roles, permissions) or data.role.slug
	// (memberships).
	Slug string
}

// WebhookVerifier checks WorkOS webhook deliveries against the webhook
// secret from the WorkOS dashboard, with workos-go's webhooks client. It is
// safe for concurrent use.
type WebhookVerifier struct {
	client *webhooks.Client
	secret []byte
	now    func() time.Time
}

// NewWebhookVerifier returns a verifier for secret (the endpoint's secret
// in the WorkOS dashboard). now is the clock; nil means time.Now.
func NewWebhookVerifier(secret string, now func() time.Time) (*WebhookVerifier, error) {
	if secret == "" {
		return nil, errors.New("authkit: webhook secret is required")
	}
	if now == nil {
		now = time.Now
	}
	c := webhooks.NewClient(secret)
	c.SetNow(now)
	c.SetTolerance(WebhookTolerance)
	return &WebhookVerifier{client: c, secret: []byte(secret), now: now}, nil
}

// VerifyWebhook checks the WorkOS-Signature header of a delivery and
// decodes its body. Errors wrap ErrWebhookSignature or ErrWebhookPayload.
//
// The header's shape is checked here first, because workos-go's parser
// indexes into it without bounds checks, and the signature is compared in
// constant time here, because workos-go compares with ==; then workos-go's
// ValidatePayload, which must agree, checks the timestamp tolerance and the
// signature again. A timestamp more than WebhookTolerance in the future is
// refused too (workos-go accepts any future timestamp).
func (v *WebhookVerifier) VerifyWebhook(header string, body []byte) (WebhookEvent, error) {
	ts, sig, err := parseWebhookHeader(header)
	if err != nil {
		return WebhookEvent{}, err
	}
	if len(body) > MaxWebhookBody {
		return WebhookEvent{}, fmt.Errorf("%w: body is %d bytes, the limit is %d", ErrWebhookPayload, len(body), MaxWebhookBody)
	}
	mac := hmac.New(sha256.New, v.secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), sig) {
		return WebhookEvent{}, fmt.Errorf("%w: signature does not match", ErrWebhookSignature)
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return WebhookEvent{}, fmt.Errorf("%w: timestamp: %w", ErrWebhookSignature, err)
	}
	if time.UnixMilli(ms).Sub(v.now()) > WebhookTolerance {
		return WebhookEvent{}, fmt.Errorf("%w: timestamp is in the future", ErrWebhookSignature)
	}
	if _, err := v.client.ValidatePayload(header, string(body)); err != nil {
		return WebhookEvent{}, fmt.Errorf("%w: %w", ErrWebhookSignature, err)
	}
	return decodeWebhookEvent(body)
}

// parseWebhookHeader checks the header is exactly "t=<digits>, v1=<64 hex
// digits>" and returns the timestamp text and the decoded signature.
func parseWebhookHeader(h string) (ts string, sig []byte, err error) {
	if h == "" {
		return "", nil, fmt.Errorf("%w: no %s header", ErrWebhookSignature, WebhookSignatureHeader)
	}
	if len(h) > maxWebhookHeader {
		return "", nil, fmt.Errorf("%w: %s header too long", ErrWebhookSignature, WebhookSignatureHeader)
	}
	tpart, vpart, ok := strings.Cut(h, ", ")
	if !ok || !strings.HasPrefix(tpart, "t=") || !strings.HasPrefix(vpart, webhookSignatureVersionPrefix) {
		return "", nil, fmt.Errorf("%w: malformed %s header", ErrWebhookSignature, WebhookSignatureHeader)
	}
	ts = tpart[2:]
	if ts == "" || len(ts) > 18 || strings.Trim(ts, "0123456789") != "" {
		return "", nil, fmt.Errorf("%w: malformed timestamp", ErrWebhookSignature)
	}
	hexSig := vpart[len(webhookSignatureVersionPrefix):]
	if len(hexSig) != 2*sha256.Size || strings.ToLower(hexSig) != hexSig {
		return "", nil, fmt.Errorf("%w: malformed signature", ErrWebhookSignature)
	}
	sig, err = hex.DecodeString(hexSig)
	if err != nil {
		return "", nil, fmt.Errorf("%w: malformed signature", ErrWebhookSignature)
	}
	return ts, sig, nil
}

// decodeWebhookEvent decodes a WorkOS event object.
func decodeWebhookEvent(body []byte) (WebhookEvent, error) {
	var raw struct {
		ID        string `json:"id"`
		Event     string `json:"event"`
		CreatedAt string `json:"created_at"`
		Data      struct {
			ID             string `json:"id"`
			UserID         string `json:"user_id"`
			OrganizationID string `json:"organization_id"`
			Status         string `json:"status"`
			Slug           string `json:"slug"`
			Role           *struct {
				Slug string `json:"slug"`
			} `json:"role"`
		} `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return WebhookEvent{}, fmt.Errorf("%w: %w", ErrWebhookPayload, err)
	}
	if dec.More() {
		return WebhookEvent{}, fmt.Errorf("%w: data after the event object", ErrWebhookPayload)
	}
	switch {
	case raw.ID == "" || len(raw.ID) > maxWebhookEventIDLen:
		return WebhookEvent{}, fmt.Errorf("%w: event id missing or longer than %d bytes", ErrWebhookPayload, maxWebhookEventIDLen)
	case raw.Event == "" || len(raw.Event) > maxWebhookEventTypeLen:
		return WebhookEvent{}, fmt.Errorf("%w: event type missing or longer than %d bytes", ErrWebhookPayload, maxWebhookEventTypeLen)
	}
	d := raw.Data
	for _, f := range []string{d.ID, d.UserID, d.OrganizationID, d.Status, d.Slug} {
		if len(f) > maxWebhookEventFieldLen {
			return WebhookEvent{}, fmt.Errorf("%w: a data field is longer than %d bytes", ErrWebhookPayload, maxWebhookEventFieldLen)
		}
	}
	ev := WebhookEvent{
		ID: raw.ID, Type: raw.Event, ObjectID: d.ID, UserID: d.UserID,
		OrganizationID: d.OrganizationID, Status: d.Status, Slug: d.Slug,
	}
	if d.Role != nil && ev.Slug == "" {
		if len(d.Role.Slug) > maxWebhookEventFieldLen {
			return WebhookEvent{}, fmt.Errorf("%w: role slug longer than %d bytes", ErrWebhookPayload, maxWebhookEventFieldLen)
		}
		ev.Slug = d.Role.Slug
	}
	if strings.HasPrefix(ev.Type, "user.") && ev.UserID == "" {
		ev.UserID = d.ID
	}
	if raw.CreatedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, raw.CreatedAt)
		if err != nil {
			return WebhookEvent{}, fmt.Errorf("%w: created_at: %w", ErrWebhookPayload, err)
		}
		ev.CreatedAt = t
	}
	return ev, nil
}
