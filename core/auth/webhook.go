package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/store"
)

// PathWorkOSWebhook is where WorkOS delivers events (register
// PublicURL+PathWorkOSWebhook in the WorkOS dashboard under Webhooks).
const PathWorkOSWebhook = "/webhooks/workos"

// webhookSeenTTL is how long a handled event id is remembered, so that a
// redelivery (WorkOS retries until it gets a 2xx, with the same event id)
// does nothing. It is longer than WorkOS's retry schedule.
const webhookSeenTTL = 72 * time.Hour

// webhookSeenPrefix is the store.SystemNamespace key prefix of handled
// event ids (the key holds the SHA-256 of the id, so any id is a valid key).
const webhookSeenPrefix = "webhook/workos/"

// WebhookVerifier checks a WorkOS webhook delivery and decodes its event:
// *authkit.WebhookVerifier. Errors wrap authkit.ErrWebhookSignature or
// authkit.ErrWebhookPayload.
type WebhookVerifier interface {
	VerifyWebhook(header string, body []byte) (authkit.WebhookEvent, error)
}

var _ WebhookVerifier = (*authkit.WebhookVerifier)(nil)

// WebhookHandler returns the handler of PathWorkOSWebhook: WorkOS events
// that end or narrow what a user may do reach toolgate at once, instead of
// at the grant's next refresh.
//
//   - session.revoked: every grant whose upstream session is data.id ends
//     (the grant and all its tokens);
//   - user.deleted: every grant of the user ends;
//   - organization_membership.deleted (and its older name .removed): the
//     user's grants in that organization end; organization_membership.updated
//     ends them when the membership is no longer active, and otherwise marks
//     them stale;
//   - role.updated, role.deleted (every grant with that role slug),
//     organization_role.updated, organization_role.deleted (with that slug
//     in that organization), permission.updated and permission.deleted (every
//     grant holding that permission): the grants are marked stale.
//
// A stale grant's upstream expiry (store.Grant.UpstreamExpiresAt) is set to
// now, so its access tokens are refused from the next request on while its
// refresh token lives: the client refreshes, the refresh asks AuthKit, and
// the grant carries the new role and permissions (or ends, if AuthKit
// refuses). Ending every grant instead would send each user back through
// the browser sign-in for any role edit.
//
// Every change drops the cached tokens (Invalidate) before the handler
// answers. A delivery that is not correctly signed is answered 401, a body
// over authkit.MaxWebhookBody 413, a signed body that is no event 400, any
// other event type 200 (acknowledged, ignored), and a failure to apply an
// event 500, so WorkOS delivers it again. Handled event ids are remembered
// in the store for webhookSeenTTL: a redelivered event does nothing.
// Finding the grants reads the user's grants (ListGrants by user), or every
// live grant for role and permission events, which are rare operator
// actions.
func (s *Server) WebhookHandler(v WebhookVerifier) http.Handler {
	return webhookHandler(v, s.log, s.applyEvent)
}

// webhookHandler verifies deliveries with v and passes their events to apply.
func webhookHandler(v WebhookVerifier, log *slog.Logger, apply func(context.Context, authkit.WebhookEvent) error) http.Handler {
	refusals := newLogSampler(refusedWebhookLogs, refusedWebhookBurst)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, &Error{Code: ErrCodeInvalidRequest, Description: "method " + r.Method + " is not allowed", Status: http.StatusMethodNotAllowed})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, authkit.MaxWebhookBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, &Error{Code: ErrCodeInvalidRequest, Description: "the body is too large", Status: http.StatusRequestEntityTooLarge})
				return
			}
			writeError(w, &Error{Code: ErrCodeInvalidRequest, Description: "cannot read the body", Status: http.StatusBadRequest})
			return
		}
		ev, err := v.VerifyWebhook(r.Header.Get(authkit.WebhookSignatureHeader), body)
		switch {
		case errors.Is(err, authkit.ErrWebhookSignature):
			refusals.log(r.Context(), log, "auth: webhook delivery refused", "err", err, "client", r.RemoteAddr)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "invalid_signature"})
			return
		case err != nil:
			refusals.log(r.Context(), log, "auth: webhook payload refused", "err", err, "client", r.RemoteAddr)
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_payload"})
			return
		}
		if err := apply(r.Context(), ev); err != nil {
			log.ErrorContext(r.Context(), "auth: webhook event not applied; WorkOS will deliver it again", "event_id", ev.ID, "event", ev.Type, "err", err)
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "server_error"})
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
}

// grantAction is what an event does to a matching grant.
type grantAction int

const (
	actionEnd grantAction = iota + 1
	actionStale
)

// applyEvent carries out one verified event (see WebhookHandler).
func (s *Server) applyEvent(ctx context.Context, ev authkit.WebhookEvent) error {
	var (
		filter store.GrantFilter
		match  func(store.Grant) bool
		action = actionEnd
	)
	switch ev.Type {
	case authkit.EventSessionRevoked:
		filter.UserID = ev.UserID // WorkOS names the user; without it, every grant is read
		match = func(g store.Grant) bool { return g.UpstreamSessionID == ev.ObjectID }
	case authkit.EventUserDeleted:
		filter.UserID = ev.UserID
		match = func(store.Grant) bool { return true }
	case authkit.EventMembershipDeleted, authkit.EventMembershipRemoved, authkit.EventMembershipUpdated:
		filter.UserID = ev.UserID
		match = func(g store.Grant) bool { return g.OrganizationID == ev.OrganizationID }
		if ev.Type == authkit.EventMembershipUpdated && ev.Status == authkit.MembershipStatusActive {
			action = actionStale
		}
	case authkit.EventRoleUpdated, authkit.EventRoleDeleted:
		match = func(g store.Grant) bool { return g.Role == ev.Slug }
		action = actionStale
	case authkit.EventOrganizationRoleUpdated, authkit.EventOrganizationRoleDeleted:
		match = func(g store.Grant) bool { return g.Role == ev.Slug && g.OrganizationID == ev.OrganizationID }
		action = actionStale
	case authkit.EventPermissionUpdated, authkit.EventPermissionDeleted:
		match = func(g store.Grant) bool { return slices.Contains(g.Permissions, ev.Slug) }
		action = actionStale
	default:
		s.log.DebugContext(ctx, "auth: webhook event ignored", "event_id", ev.ID, "event", ev.Type)
		return nil
	}
	if !eventNamesItsSubject(ev) {
		// Nothing to match on: acknowledge rather than have WorkOS retry
		// a delivery that can never apply.
		s.log.WarnContext(ctx, "auth: webhook event without the fields it needs; ignored", "event_id", ev.ID, "event", ev.Type)
		return nil
	}
	seenKey := webhookSeenPrefix + store.HashSecret(ev.ID)
	switch _, err := s.st.KVGet(ctx, store.SystemNamespace, seenKey); {
	case err == nil:
		s.log.DebugContext(ctx, "auth: webhook event already handled", "event_id", ev.ID, "event", ev.Type)
		return nil
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("look up event %s: %w", ev.ID, err)
	}
	gs, err := s.st.ListGrants(ctx, filter)
	if err != nil {
		return fmt.Errorf("list grants for %s: %w", ev.Type, err)
	}
	n := 0
	for _, g := range gs {
		if !match(g) {
			continue
		}
		if err := s.applyToGrant(ctx, g.ID, action); err != nil {
			return fmt.Errorf("%s: grant %s: %w", ev.Type, g.ID, err)
		}
		n++
	}
	if err := s.st.KVPut(ctx, store.SystemNamespace, seenKey, []byte(ev.Type), webhookSeenTTL); err != nil {
		return fmt.Errorf("remember event %s: %w", ev.ID, err)
	}
	verb := "ended"
	if action == actionStale {
		verb = "marked stale"
	}
	s.log.InfoContext(ctx, "auth: webhook event applied", "event_id", ev.ID, "event", ev.Type, "grants", n, "action", verb)
	return nil
}

// eventNamesItsSubject reports whether ev carries the fields its type is
// matched on.
func eventNamesItsSubject(ev authkit.WebhookEvent) bool {
	switch ev.Type {
	case authkit.EventSessionRevoked:
		return ev.ObjectID != ""
	case authkit.EventUserDeleted:
		return ev.UserID != ""
	case authkit.EventMembershipDeleted, authkit.EventMembershipRemoved, authkit.EventMembershipUpdated:
		return ev.UserID != "" && ev.OrganizationID != ""
	case authkit.EventOrganizationRoleUpdated, authkit.EventOrganizationRoleDeleted:
		return ev.Slug != "" && ev.OrganizationID != ""
	default:
		return ev.Slug != ""
	}
}

// applyToGrant ends grant id, or marks it stale, and drops its cached
// tokens. A grant that is already gone is not an error.
func (s *Server) applyToGrant(ctx context.Context, id string, action grantAction) error {
	if action == actionEnd {
		if err := s.st.RevokeGrant(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		s.Invalidate(store.Change{Kind: store.ChangeGrantRevoked, ID: id})
		return nil
	}
	now := s.cfg.Now().UTC()
	_, err := s.st.UpdateGrant(ctx, id, func(g *store.Grant) error {
		if g.UpstreamExpiresAt.IsZero() || g.UpstreamExpiresAt.After(now) {
			g.UpstreamExpiresAt = now
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	s.Invalidate(store.Change{Kind: store.ChangeGrantUpdated, ID: id})
	return nil
}

// Refused deliveries are logged at Warn at most refusedWebhookLogs a minute
// (bursts of refusedWebhookBurst); the rest go to Debug, and the next Warn
// line says how many were held back. The endpoint has no rate limit of its
// own (WorkOS delivers in bursts from a few addresses), so without this
// anyone could fill the log with unsigned requests.
const (
	refusedWebhookLogs  = 6
	refusedWebhookBurst = 5
)

// logSampler lets through a bounded rate of Warn lines and counts the rest.
type logSampler struct {
	lim        *rate.Limiter
	suppressed atomic.Int64
}

func newLogSampler(perMinute, burst int) *logSampler {
	return &logSampler{lim: rate.NewLimiter(rate.Limit(float64(perMinute)/60), burst)}
}

// log writes msg at Warn, with the number of lines held back since the
// last one, when the rate allows, and at Debug otherwise.
func (ls *logSampler) log(ctx context.Context, log *slog.Logger, msg string, args ...any) {
	if !ls.lim.Allow() {
		ls.suppressed.Add(1)
		log.DebugContext(ctx, msg, args...)
		return
	}
	if n := ls.suppressed.Swap(0); n > 0 {
		args = append(args, "held_back", n)
	}
	log.WarnContext(ctx, msg, args...)
}
