package devauthkit

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// defaultListLimit and maxListLimit are WorkOS's page sizes for list
	// endpoints.
	defaultListLimit = 10
	maxListLimit     = 100
	// fixedTimestamp is the created_at of every dev organization object:
	// they are derived from the configuration, which has no history.
	fixedTimestamp = "2025-01-01T00:00:00.000Z"
)

// orgRole is a role of a dev organization. Roles are derived from the dev
// users: each distinct (organization, role slug) pair is a role whose
// permissions start as those of the first configured user with that role
// in that organization.
type orgRole struct {
	orgID       string
	slug        string
	permissions []string
}

// buildRoles derives the organization roles from users, in configuration
// order.
func buildRoles(users []*user) []*orgRole {
	var roles []*orgRole
	for _, u := range users {
		if u.orgID == "" || findRole(roles, u.orgID, u.Role) != nil {
			continue
		}
		roles = append(roles, &orgRole{orgID: u.orgID, slug: u.Role, permissions: slices.Clone(u.Permissions)})
	}
	return roles
}

func findRole(roles []*orgRole, orgID, slug string) *orgRole {
	for _, r := range roles {
		if r.orgID == orgID && r.slug == slug {
			return r
		}
	}
	return nil
}

// IDs returns the WorkOS-style user id of the dev user with email and the id
// of its organization (empty when it has none). Both are derived from the
// configuration and stable across restarts.
func (s *Server) IDs(email string) (userID, organizationID string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByEmailLocked(email)
	if u == nil {
		return "", "", false
	}
	return u.id, u.orgID, true
}

// checkAPIKey answers 401 and reports false unless r carries the API key as
// a Bearer token, as WorkOS's management endpoints require.
func (s *Server) checkAPIKey(w http.ResponseWriter, r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.apiKey)) != 1 {
		writeJSON(w, http.StatusUnauthorized, &apiError{Code: "unauthorized", Message: "Unauthorized"})
		return false
	}
	return true
}

// membershipStatuses are the statuses WorkOS knows. Dev memberships are
// always active.
var membershipStatuses = []string{"active", "inactive", "pending"}

// membershipQuery is the parsed query of GET
// /user_management/organization_memberships.
type membershipQuery struct {
	userID         string
	organizationID string
	statuses       []string // empty means any
	limit          int
	desc           bool
	before, after  string
}

func invalidParams(msg string) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, Code: "invalid_request_parameters", Message: msg}
}

// parseMembershipQuery validates the query the way WorkOS does for the
// parameters workos-go sends: user_id, organization_id, statuses (repeated,
// as workos-go encodes it, or comma-separated), limit (1 to 100, default
// 10), order (asc, desc or normal), before and after (at most one).
func parseMembershipQuery(q url.Values) (membershipQuery, *apiError) {
	mq := membershipQuery{limit: defaultListLimit}
	single := map[string]*string{
		"user_id": &mq.userID, "organization_id": &mq.organizationID,
		"before": &mq.before, "after": &mq.after,
	}
	var limit, order string
	single["limit"] = &limit
	single["order"] = &order
	for name, dst := range single {
		switch vals := q[name]; len(vals) {
		case 0:
		case 1:
			*dst = vals[0]
		default:
			return membershipQuery{}, invalidParams("Parameter " + strconv.Quote(name) + " repeated.")
		}
	}
	for _, name := range []string{"statuses", "statuses[]"} {
		for _, v := range q[name] {
			for st := range strings.SplitSeq(v, ",") {
				if !slices.Contains(membershipStatuses, st) {
					return membershipQuery{}, invalidParams("statuses must be active, inactive or pending.")
				}
				if !slices.Contains(mq.statuses, st) {
					mq.statuses = append(mq.statuses, st)
				}
			}
		}
	}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > maxListLimit {
			return membershipQuery{}, invalidParams("limit must be an integer from 1 to 100.")
		}
		mq.limit = n
	}
	switch order {
	case "", "asc", "normal":
	case "desc":
		mq.desc = true
	default:
		return membershipQuery{}, invalidParams("order must be asc, desc or normal.")
	}
	if mq.before != "" && mq.after != "" {
		return membershipQuery{}, invalidParams("Only one of before and after may be given.")
	}
	return mq, nil
}

// membershipObject is WorkOS's organization membership object.
type membershipObject struct {
	Object         string       `json:"object"`
	ID             string       `json:"id"`
	UserID         string       `json:"user_id"`
	OrganizationID string       `json:"organization_id"`
	Role           roleResponse `json:"role"`
	Status         string       `json:"status"`
	CreatedAt      string       `json:"created_at"`
	UpdatedAt      string       `json:"updated_at"`
}

// roleResponse is the role of a membership.
type roleResponse struct {
	Slug string `json:"slug"`
}

// listMetadata is WorkOS's pagination cursor pair.
type listMetadata struct {
	Before *string `json:"before"`
	After  *string `json:"after"`
}

type membershipList struct {
	Object       string             `json:"object"`
	Data         []membershipObject `json:"data"`
	ListMetadata listMetadata       `json:"list_metadata"`
}

// handleListMemberships serves GET /user_management/organization_memberships:
// every dev user with an organization has one active membership in it, with
// the user's role.
func (s *Server) handleListMemberships(w http.ResponseWriter, r *http.Request) {
	if !s.checkAPIKey(w, r) {
		return
	}
	q, aerr := parseMembershipQuery(r.URL.Query())
	if aerr != nil {
		writeJSON(w, aerr.status, aerr)
		return
	}
	var all []membershipObject
	s.mu.Lock()
	for _, u := range s.users {
		if u.orgID == "" ||
			(q.userID != "" && q.userID != u.id) ||
			(q.organizationID != "" && q.organizationID != u.orgID) ||
			(len(q.statuses) > 0 && !slices.Contains(q.statuses, "active")) {
			continue
		}
		all = append(all, membershipObject{
			Object:         "organization_membership",
			ID:             "om_" + stableID("membership:"+u.id+":"+u.orgID),
			UserID:         u.id,
			OrganizationID: u.orgID,
			Role:           roleResponse{Slug: u.Role},
			Status:         "active",
			CreatedAt:      fixedTimestamp,
			UpdatedAt:      fixedTimestamp,
		})
	}
	s.mu.Unlock()
	if q.desc {
		slices.Reverse(all)
	}
	page, meta, aerr := paginate(all, q)
	if aerr != nil {
		writeJSON(w, aerr.status, aerr)
		return
	}
	writeJSON(w, http.StatusOK, membershipList{Object: "list", Data: page, ListMetadata: meta})
}

// paginate cuts the page q asks for out of all: up to q.limit items after
// the after cursor, before the before cursor, or from the start.
func paginate(all []membershipObject, q membershipQuery) ([]membershipObject, listMetadata, *apiError) {
	index := func(id string) int {
		return slices.IndexFunc(all, func(m membershipObject) bool { return m.ID == id })
	}
	var lo, hi int
	switch {
	case q.after != "":
		i := index(q.after)
		if i < 0 {
			return nil, listMetadata{}, invalidParams("after is not the id of a membership in this list.")
		}
		lo = i + 1
		hi = min(lo+q.limit, len(all))
	case q.before != "":
		i := index(q.before)
		if i < 0 {
			return nil, listMetadata{}, invalidParams("before is not the id of a membership in this list.")
		}
		hi = i
		lo = max(hi-q.limit, 0)
	default:
		hi = min(q.limit, len(all))
	}
	page := slices.Clone(all[lo:hi])
	if page == nil {
		page = []membershipObject{}
	}
	var meta listMetadata
	if len(page) > 0 && lo > 0 {
		meta.Before = &page[0].ID
	}
	if len(page) > 0 && hi < len(all) {
		meta.After = &page[len(page)-1].ID
	}
	return page, meta, nil
}

// roleObject is WorkOS's role object, with the permissions field that the
// organization roles endpoint returns.
type roleObject struct {
	Object      string   `json:"object"`
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Slug        string   `json:"slug"`
	Description string   `json:"description"`
	Permissions []string `json:"permissions"`
	Type        string   `json:"type"`
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
}

type roleList struct {
	Object string       `json:"object"`
	Data   []roleObject `json:"data"`
}

// handleListRoles serves GET /organizations/{id}/roles: the roles dev users
// hold in that organization, in configuration order, each with its current
// permissions.
func (s *Server) handleListRoles(w http.ResponseWriter, r *http.Request) {
	if !s.checkAPIKey(w, r) {
		return
	}
	orgID := r.PathValue("id")
	var data []roleObject
	s.mu.Lock()
	for _, role := range s.roles {
		if role.orgID != orgID {
			continue
		}
		data = append(data, roleObject{
			Object:      "role",
			ID:          "role_" + stableID("role:"+role.orgID+":"+role.slug),
			Name:        roleName(role.slug),
			Slug:        role.slug,
			Description: "Development role, derived from the dev users.",
			Permissions: slices.Clone(role.permissions),
			Type:        "EnvironmentRole",
			CreatedAt:   fixedTimestamp,
			UpdatedAt:   fixedTimestamp,
		})
	}
	s.mu.Unlock()
	if data == nil {
		writeJSON(w, http.StatusNotFound, &apiError{Code: "entity_not_found", Message: "Organization not found."})
		return
	}
	writeJSON(w, http.StatusOK, roleList{Object: "list", Data: data})
}

// roleName is the display name of a role slug: its first letter in upper
// case.
func roleName(slug string) string {
	r, n := utf8.DecodeRuneInString(slug)
	if r == utf8.RuneError {
		return slug
	}
	return string(unicode.ToUpper(r)) + slug[n:]
}
