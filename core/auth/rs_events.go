package auth

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/toolgate/toolgate/core/auth/authkit"
)

// rsDenyTTL is how long resource-server mode remembers an event that
// refuses AuthKit tokens: longer than any AuthKit access token lives
// (WorkOS's default is 5 minutes), after which every token the event
// concerns has expired anyway.
const rsDenyTTL = 24 * time.Hour

// rsDenyMax bounds the remembered events; past it the oldest are dropped.
const rsDenyMax = 100000

// PermissionForgetter is implemented by a PermissionSource that caches
// (*authkit.Upstream): resource-server mode asks it to forget every cached
// answer when WorkOS announces a membership, role or permission change.
type PermissionForgetter interface {
	ForgetPermissions()
}

var _ PermissionForgetter = (*authkit.Upstream)(nil)

// rsDenials is what resource-server mode learned from WorkOS events: ended
// sessions, and for users, memberships, roles and permissions the instant
// before which their tokens no longer count.
type rsDenials struct {
	mu        sync.Mutex
	sessions  map[string]time.Time // sid → forget after
	notBefore map[string]rsMark    // subject key → tokens issued at or before at are refused
}

type rsMark struct {
	at     time.Time // the event's time, whole seconds
	forget time.Time
}

// Subject keys of rsDenials.notBefore.
func userKey(u string) string            { return "user\x00" + u }
func memberKey(u, org string) string     { return "member\x00" + u + "\x00" + org }
func roleKey(slug string) string         { return "role\x00" + slug }
func orgRoleKey(org, slug string) string { return "orgrole\x00" + org + "\x00" + slug }
func permissionKey(slug string) string   { return "perm\x00" + slug }
func (d *rsDenials) sweepLocked(now time.Time) {
	if len(d.sessions)+len(d.notBefore) < rsDenyMax {
		return
	}
	for k, until := range d.sessions {
		if !now.Before(until) {
			delete(d.sessions, k)
		}
	}
	for k, m := range d.notBefore {
		if !now.Before(m.forget) {
			delete(d.notBefore, k)
		}
	}
	// Still full: drop arbitrary entries (map order) until there is room.
	for k := range d.sessions {
		if len(d.sessions)+len(d.notBefore) < rsDenyMax {
			return
		}
		delete(d.sessions, k)
	}
	for k := range d.notBefore {
		if len(d.sessions)+len(d.notBefore) < rsDenyMax {
			return
		}
		delete(d.notBefore, k)
	}
}

func (d *rsDenials) endSession(sid string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweepLocked(now)
	if d.sessions == nil {
		d.sessions = make(map[string]time.Time)
	}
	d.sessions[sid] = now.Add(rsDenyTTL)
}

func (d *rsDenials) mark(key string, at, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweepLocked(now)
	if d.notBefore == nil {
		d.notBefore = make(map[string]rsMark)
	}
	if old, ok := d.notBefore[key]; ok && old.at.After(at) {
		at = old.at
	}
	d.notBefore[key] = rsMark{at: at, forget: now.Add(rsDenyTTL)}
}

// refuses reports whether an event since refuses a token with these claims.
// A token without iat counts as issued before any event.
func (d *rsDenials) refuses(c authkit.Claims, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if until, ok := d.sessions[c.SessionID]; ok && c.SessionID != "" && now.Before(until) {
		return true
	}
	if len(d.notBefore) == 0 {
		return false
	}
	keys := []string{userKey(c.Subject), roleKey(c.Role)}
	if c.OrganizationID != "" {
		keys = append(keys, memberKey(c.Subject, c.OrganizationID), orgRoleKey(c.OrganizationID, c.Role))
	}
	for _, p := range c.Permissions {
		keys = append(keys, permissionKey(p))
	}
	for _, k := range keys {
		if m, ok := d.notBefore[k]; ok && now.Before(m.forget) && !c.IssuedAt.After(m.at) {
			return true
		}
	}
	return false
}

// WebhookHandler returns the handler of PathWorkOSWebhook in
// resource-server mode. The tokens are AuthKit's own JWTs, which toolgate
// cannot revoke, so it remembers (in memory, per process, for rsDenyTTL)
// what each event ends and refuses matching tokens from the next request
// on: session.revoked refuses the session's tokens; user.deleted, and
// organization_membership.deleted, .removed and .updated, refuse the
// user's tokens (in that organization) issued up to the event; role.*,
// organization_role.* and permission.* events refuse the tokens with that
// role or permission issued up to the event. The event's second counts
// as "up to": a token issued in it is refused too, so a client may need to
// ask AuthKit twice within that second. A client that gets a new token
// from AuthKit is served with what that token says. Membership, role and
// permission events also empty the PermissionSource's cache when it is a
// PermissionForgetter. Responses are as in Server.WebhookHandler; repeated
// deliveries are harmless (the marks are the same).
func (rs *ResourceServer) WebhookHandler(v WebhookVerifier) http.Handler {
	return webhookHandler(v, rs.cfg.Logger, rs.applyEvent)
}

func (rs *ResourceServer) applyEvent(ctx context.Context, ev authkit.WebhookEvent) error {
	now := rs.cfg.Now()
	at := ev.CreatedAt
	if at.IsZero() || at.After(now) {
		at = now
	}
	at = at.Truncate(time.Second)
	forgetPerms := true
	switch ev.Type {
	case authkit.EventSessionRevoked:
		if ev.ObjectID == "" {
			return nil
		}
		rs.denied.endSession(ev.ObjectID, now)
		forgetPerms = false
	case authkit.EventUserDeleted:
		if ev.UserID == "" {
			return nil
		}
		rs.denied.mark(userKey(ev.UserID), at, now)
	case authkit.EventMembershipDeleted, authkit.EventMembershipRemoved, authkit.EventMembershipUpdated:
		if ev.UserID == "" || ev.OrganizationID == "" {
			return nil
		}
		rs.denied.mark(memberKey(ev.UserID, ev.OrganizationID), at, now)
	case authkit.EventRoleUpdated, authkit.EventRoleDeleted:
		if ev.Slug == "" {
			return nil
		}
		rs.denied.mark(roleKey(ev.Slug), at, now)
	case authkit.EventOrganizationRoleUpdated, authkit.EventOrganizationRoleDeleted:
		if ev.Slug == "" || ev.OrganizationID == "" {
			return nil
		}
		rs.denied.mark(orgRoleKey(ev.OrganizationID, ev.Slug), at, now)
	case authkit.EventPermissionUpdated, authkit.EventPermissionDeleted:
		if ev.Slug == "" {
			return nil
		}
		rs.denied.mark(permissionKey(ev.Slug), at, now)
	default:
		return nil
	}
	if forgetPerms {
		if f, ok := rs.cfg.Permissions.(PermissionForgetter); ok {
			f.ForgetPermissions()
		}
	}
	rs.cache.clear()
	rs.cfg.Logger.InfoContext(ctx, "auth: webhook event applied", "event_id", ev.ID, "event", ev.Type)
	return nil
}
