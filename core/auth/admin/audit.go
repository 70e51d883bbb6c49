package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// Limits of GET /v1/audit.
const (
	// DefaultAuditLimit is how many records GET /v1/audit returns without
	// a limit parameter.
	DefaultAuditLimit = 50
	// MaxAuditLimit is the largest limit GET /v1/audit accepts.
	MaxAuditLimit = 1000
)

// AuditEntry is an audit record (one tool call or denial) as the admin API
// shows it.
type AuditEntry struct {
	ID             string    `json:"id"`
	Time           time.Time `json:"time"`
	UserID         string    `json:"user_id"`
	Email          string    `json:"email,omitempty"`
	OrganizationID string    `json:"organization_id,omitempty"`
	ClientID       string    `json:"client_id,omitempty"`
	Plugin         string    `json:"plugin,omitempty"`
	Tool           string    `json:"tool"`
	Decision       string    `json:"decision"`
	Outcome        string    `json:"outcome"`
	ErrorKind      string    `json:"error_kind,omitempty"`
	// DurationNS is how long the call took, in nanoseconds.
	DurationNS int64 `json:"duration_ns"`
	// ExpiresAt is when retention removes the record; absent: never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// NewAuditEntry returns r as the admin API shows it.
func NewAuditEntry(r store.AuditRecord) AuditEntry {
	return AuditEntry{
		ID: r.ID, Time: r.Time, UserID: r.UserID, Email: r.Email, OrganizationID: r.OrganizationID,
		ClientID: r.ClientID, Plugin: r.Plugin, Tool: r.Tool, Decision: r.Decision, Outcome: r.Outcome,
		ErrorKind: r.ErrorKind, DurationNS: int64(r.Duration), ExpiresAt: r.ExpiresAt,
	}
}

// Record returns e as a store record.
func (e AuditEntry) Record() store.AuditRecord {
	return store.AuditRecord{
		ID: e.ID, Time: e.Time, UserID: e.UserID, Email: e.Email, OrganizationID: e.OrganizationID,
		ClientID: e.ClientID, Plugin: e.Plugin, Tool: e.Tool, Decision: e.Decision, Outcome: e.Outcome,
		ErrorKind: e.ErrorKind, Duration: time.Duration(e.DurationNS), ExpiresAt: e.ExpiresAt,
	}
}

// ParseAuditQuery parses the parameters of GET /v1/audit: since (an RFC
// 3339 time; records at or after it), user (a user ID), tool (a tool
// name) and limit (1 to MaxAuditLimit, default DefaultAuditLimit). Each
// may be given at most once; any other parameter is an error, so a typo
// is not silently ignored. The error message is meant for the caller.
func ParseAuditQuery(v url.Values) (store.AuditQuery, error) {
	q := store.AuditQuery{Limit: DefaultAuditLimit}
	for name, vals := range v {
		switch name {
		case "since", "user", "tool", "limit":
		default:
			return store.AuditQuery{}, fmt.Errorf("unknown parameter %q (want since, user, tool or limit)", name)
		}
		if len(vals) != 1 {
			return store.AuditQuery{}, fmt.Errorf("parameter %q given %d times, want once", name, len(vals))
		}
	}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return store.AuditQuery{}, fmt.Errorf("since %q is not an RFC 3339 time such as 2026-11-26T06:00:00Z", s)
		}
		q.Since = t
	}
	q.UserID = v.Get("user")
	q.Tool = v.Get("tool")
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxAuditLimit {
			return store.AuditQuery{}, fmt.Errorf("limit %q is not a whole number from 1 to %d", s, MaxAuditLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// auditValues encodes q as the parameters ParseAuditQuery reads; zero
// fields are left out.
func auditValues(q store.AuditQuery) url.Values {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano)) // keep its offset: in UTC the year may leave 0000–9999
	}
	if q.UserID != "" {
		v.Set("user", q.UserID)
	}
	if q.Tool != "" {
		v.Set("tool", q.Tool)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

func (h *handler) listAudit(w http.ResponseWriter, r *http.Request) {
	q, err := ParseAuditQuery(r.URL.Query())
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	recs, err := h.st.ListAudit(r.Context(), q)
	if err != nil {
		h.fail(w, r, "list audit records", err)
		return
	}
	out := make([]AuditEntry, 0, len(recs))
	for _, rec := range recs {
		out = append(out, NewAuditEntry(rec))
	}
	writeJSON(w, http.StatusOK, out)
}
