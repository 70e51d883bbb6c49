package authkit

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/workos/workos-go/v4/pkg/usermanagement"
	"github.com/workos/workos-go/v4/pkg/workos_errors"
)

const (
	// DefaultPermissionsCacheTTL is how long Permissions remembers a
	// user's role and permissions in an organization when
	// Config.PermissionsCacheTTL is zero.
	DefaultPermissionsCacheTTL = 5 * time.Minute
	// DefaultPermissionsCacheSize bounds the permissions cache when
	// Config.PermissionsCacheSize is zero.
	DefaultPermissionsCacheSize = 10000

	// permissionsTimeout bounds one membership-and-roles lookup, whatever
	// the deadline of the caller that started it.
	permissionsTimeout = 10 * time.Second
	// maxRolesResponseSize caps the organization roles response body.
	maxRolesResponseSize = 1 << 20
	// membershipsLimit is the page size of the membership lookup. Filtered
	// by user and organization, WorkOS returns at most one membership.
	membershipsLimit = 10
	// userAgent identifies the requests authkit makes without workos-go.
	userAgent = "toolgate-authkit"
)

// ErrNoMembership means the user has no active membership in the
// organization (none at all, or an inactive or pending one). A caller
// deciding what the user may do should treat it as "no permissions".
var ErrNoMembership = errors.New("user has no active organization membership")

// Permissions returns the role slug of the user's active membership in the
// organization and the permissions WorkOS assigns to that role. It is the
// fallback for resource-server mode when an AuthKit access token carries no
// permissions claim.
//
// Two WorkOS requests are made: GET /user_management/organization_memberships
// (through workos-go) and GET /organizations/{id}/roles. Successful results
// are cached per (user, organization) for Config.PermissionsCacheTTL; errors
// are not cached. Concurrent calls for the same pair while no result is
// cached share one lookup, which runs with its own deadline so that one
// caller giving up does not fail the others.
//
// A user without an active membership gets an error wrapping
// ErrNoMembership; network failures, timeouts and 5xx/429 answers wrap
// ErrUpstreamUnavailable; other rejections are an *UpstreamError. The
// returned permissions are never nil after success and belong to the
// caller. A role that the organization's role list does not name grants no
// permissions (and is logged).
func (u *Upstream) Permissions(ctx context.Context, userID, organizationID string) (role string, permissions []string, err error) {
	if userID == "" || organizationID == "" {
		return "", nil, errors.New("authkit: permissions: user id and organization id are required")
	}
	key := permKey{userID: userID, organizationID: organizationID}
	f, res, ok := u.perms.lookup(key)
	if ok {
		return res.role, slices.Clone(res.permissions), nil
	}
	if f.leader {
		// The lookup outlives the caller that started it: detached from
		// its cancellation, bounded by permissionsTimeout.
		go u.runPermissionsLookup(context.WithoutCancel(ctx), key, f.flight)
	}
	select {
	case <-f.flight.done:
	case <-ctx.Done():
		return "", nil, fmt.Errorf("authkit: permissions: %w", context.Cause(ctx))
	}
	if f.flight.err != nil {
		return "", nil, f.flight.err
	}
	return f.flight.res.role, slices.Clone(f.flight.res.permissions), nil
}

// runPermissionsLookup performs the lookup of flight f and publishes it.
func (u *Upstream) runPermissionsLookup(ctx context.Context, key permKey, f *permFlight) {
	ctx, cancel := context.WithTimeout(ctx, permissionsTimeout)
	defer cancel()
	res, err := u.lookupPermissions(ctx, key.userID, key.organizationID)
	if err != nil {
		err = fmt.Errorf("authkit: permissions: %w", err)
	}
	u.perms.finish(key, f, res, err)
}

func (u *Upstream) lookupPermissions(ctx context.Context, userID, organizationID string) (permResult, error) {
	role, err := u.membershipRole(ctx, userID, organizationID)
	if err != nil {
		return permResult{}, err
	}
	roles, err := u.organizationRoles(ctx, organizationID)
	if err != nil {
		return permResult{}, err
	}
	perms, ok := roles[role]
	if !ok {
		u.logger.WarnContext(ctx, "authkit: membership role is not among the organization's roles, granting no permissions",
			"user", userID, "organization", organizationID, "role", role)
		perms = []string{}
	}
	u.logger.DebugContext(ctx, "authkit: permissions looked up", "user", userID, "organization", organizationID, "role", role, "permissions", len(perms))
	return permResult{role: role, permissions: perms}, nil
}

// membershipRole returns the role slug of the user's active membership in
// the organization, or an error wrapping ErrNoMembership.
func (u *Upstream) membershipRole(ctx context.Context, userID, organizationID string) (string, error) {
	res, err := u.client.ListOrganizationMemberships(ctx, usermanagement.ListOrganizationMembershipsOpts{
		UserID:         userID,
		OrganizationID: organizationID,
		Statuses:       []usermanagement.OrganizationMembershipStatus{usermanagement.Active},
		Limit:          membershipsLimit,
	})
	if err != nil {
		return "", classify("list organization memberships", err)
	}
	// The filters are applied again here: a membership of another user or
	// organization, or one that is not active, must never grant a role.
	for _, m := range res.Data {
		if m.UserID != userID || m.OrganizationID != organizationID || m.Status != usermanagement.Active {
			continue
		}
		if m.Role.Slug == "" {
			return "", fmt.Errorf("organization membership %q has no role", m.ID)
		}
		return m.Role.Slug, nil
	}
	return "", fmt.Errorf("%w: user %q, organization %q", ErrNoMembership, userID, organizationID)
}

// organizationRoles returns the permissions of every role of the
// organization by role slug, from GET /organizations/{id}/roles.
//
// workos-go v4.46.1 has organizations.Client.ListOrganizationRoles for this
// endpoint, but it decodes each role into roles.Role, which has no
// permissions field, so the permissions WorkOS returns would be dropped.
// The request is therefore made here, with the same HTTP client, endpoint
// and API key as the workos-go client, and the response decoded by
// parseRolesResponse.
func (u *Upstream) organizationRoles(ctx context.Context, organizationID string) (map[string][]string, error) {
	const op = "list organization roles"
	endpoint := u.apiBase + "/organizations/" + url.PathEscape(organizationID) + "/roles"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("build %s request: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+u.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	res, err := u.httpClient.Do(req)
	if err != nil {
		return nil, classify(op, err)
	}
	defer res.Body.Close()
	// Error bodies are read by workos_errors too: cap them as well.
	res.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(res.Body, maxRolesResponseSize+1), res.Body}
	if err := workos_errors.TryGetHTTPError(res); err != nil {
		return nil, classify(op, err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, classify(op, fmt.Errorf("read response: %w", err))
	}
	if len(body) > maxRolesResponseSize {
		return nil, fmt.Errorf("workos %s: response exceeds %d bytes", op, maxRolesResponseSize)
	}
	roles, err := parseRolesResponse(body)
	if err != nil {
		return nil, fmt.Errorf("workos %s: %w", op, err)
	}
	return roles, nil
}

// rolesResponse is the part of WorkOS's organization roles list that
// Permissions needs.
type rolesResponse struct {
	Data *[]struct {
		Slug        string   `json:"slug"`
		Permissions []string `json:"permissions"`
	} `json:"data"`
}

// parseRolesResponse decodes a GET /organizations/{id}/roles body into the
// permissions of each role by slug. A role without a slug, a slug listed
// twice or an empty permission name make the whole response invalid: an
// ambiguous answer must not grant anything. A role with no or null
// permissions has none. The returned slices are never nil.
func parseRolesResponse(body []byte) (map[string][]string, error) {
	var doc rolesResponse
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode roles: %w", err)
	}
	if doc.Data == nil {
		return nil, errors.New("decode roles: no data array")
	}
	roles := make(map[string][]string, len(*doc.Data))
	for i, r := range *doc.Data {
		if r.Slug == "" {
			return nil, fmt.Errorf("decode roles: role %d has no slug", i)
		}
		if _, dup := roles[r.Slug]; dup {
			return nil, fmt.Errorf("decode roles: role %q listed twice", r.Slug)
		}
		perms := make([]string, 0, len(r.Permissions))
		for _, p := range r.Permissions {
			if p == "" {
				return nil, fmt.Errorf("decode roles: role %q has an empty permission", r.Slug)
			}
			perms = append(perms, p)
		}
		roles[r.Slug] = perms
	}
	return roles, nil
}

// permKey identifies a cached lookup.
type permKey struct {
	userID         string
	organizationID string
}

// permResult is a successful lookup.
type permResult struct {
	role        string
	permissions []string
}

// permFlight is a lookup in progress; done is closed once res and err are
// set, and they are not written after that.
type permFlight struct {
	done chan struct{}
	res  permResult
	err  error
	gen  uint64 // permCache.gen when the flight started
}

// permJoin is the flight a caller waits for, and whether it must start it.
type permJoin struct {
	flight *permFlight
	leader bool
}

// permEntry is a cached result.
type permEntry struct {
	key     permKey
	res     permResult
	expires time.Time
}

// permCache is a size-bounded LRU cache of lookup results with a TTL, plus
// the lookups in flight. A ttl or size of zero or less turns the cache off
// (lookups in flight are still shared).
type permCache struct {
	ttl  time.Duration
	size int
	now  func() time.Time

	mu      sync.Mutex
	entries map[permKey]*list.Element // of *permEntry
	lru     *list.List                // most recently used at the front
	flights map[permKey]*permFlight
	gen     uint64 // bumped by reset; a flight started before it caches nothing
}

func newPermCache(ttl time.Duration, size int, now func() time.Time) *permCache {
	return &permCache{
		ttl:     ttl,
		size:    size,
		now:     now,
		entries: make(map[permKey]*list.Element),
		lru:     list.New(),
		flights: make(map[permKey]*permFlight),
	}
}

// lookup returns the cached result for key, or else the flight to wait for,
// creating it (leader) when none is running.
func (c *permCache) lookup(key permKey) (permJoin, permResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*permEntry)
		if c.now().Before(e.expires) {
			c.lru.MoveToFront(el)
			return permJoin{}, e.res, true
		}
		c.lru.Remove(el)
		delete(c.entries, key)
	}
	if f, ok := c.flights[key]; ok {
		return permJoin{flight: f}, permResult{}, false
	}
	f := &permFlight{done: make(chan struct{}), gen: c.gen}
	c.flights[key] = f
	return permJoin{flight: f, leader: true}, permResult{}, false
}

// finish publishes the outcome of flight f and caches a success.
func (c *permCache) finish(key permKey, f *permFlight, res permResult, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.res, f.err = res, err
	close(f.done)
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	if err != nil || c.ttl <= 0 || c.size <= 0 || f.gen != c.gen {
		return
	}
	e := &permEntry{key: key, res: res, expires: c.now().Add(c.ttl)}
	if el, ok := c.entries[key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*permEntry).key)
	}
}

// reset forgets every cached result; lookups in flight still answer their
// callers but are not cached.
func (c *permCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
	c.lru.Init()
	clear(c.flights) // later calls start fresh lookups
}

// ForgetPermissions drops every cached result of Permissions, so the next
// call for any user asks WorkOS again: for an organization membership,
// role or permission change WorkOS announced (a webhook event).
func (u *Upstream) ForgetPermissions() {
	u.perms.reset()
}

// count reports the number of cached entries.
func (c *permCache) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
