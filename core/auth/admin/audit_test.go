package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// appendAudit stores n records, one second apart from base, alternating
// users and tools, and returns them as stored (IDs assigned).
func appendAudit(t *testing.T, st store.Store, base time.Time, n int) []store.AuditRecord {
	t.Helper()
	var out []store.AuditRecord
	for i := range n {
		r := store.AuditRecord{
			Time: base.Add(time.Duration(i) * time.Second), UserID: []string{"user_alice", "user_bob"}[i%2],
			Email: []string{"alice@example.com", "bob@example.com"}[i%2], OrganizationID: "org_acme", ClientID: "client-a",
			Plugin: "demo", Tool: []string{"add", "paint", "echo"}[i%3], Decision: "allow", Outcome: "ok",
			Duration: time.Duration(i+1) * 1500 * time.Nanosecond, ExpiresAt: base.Add(24 * time.Hour),
		}
		if i%4 == 3 {
			r.Decision, r.Outcome, r.ErrorKind = "deny", "denied", "forbidden"
		}
		got, err := st.AppendAudit(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

func TestAdminAudit(t *testing.T) {
	st, c, _, _ := setup(t)
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	recs := appendAudit(t, st, base, 60)
	// newest first, as the API answers
	newest := func(keep func(store.AuditRecord) bool, limit int) []store.AuditRecord {
		var out []store.AuditRecord
		for i := len(recs) - 1; i >= 0 && len(out) < limit; i-- {
			if keep(recs[i]) {
				out = append(out, recs[i])
			}
		}
		return out
	}
	all := func(store.AuditRecord) bool { return true }
	for _, tc := range []struct {
		name string
		q    store.AuditQuery
		want []store.AuditRecord
	}{
		{"default limit", store.AuditQuery{}, newest(all, DefaultAuditLimit)},
		{"limit", store.AuditQuery{Limit: 3}, newest(all, 3)},
		{"max limit", store.AuditQuery{Limit: MaxAuditLimit}, newest(all, len(recs))},
		{"user", store.AuditQuery{UserID: "user_bob", Limit: 100}, newest(func(r store.AuditRecord) bool { return r.UserID == "user_bob" }, 100)},
		{"tool", store.AuditQuery{Tool: "paint", Limit: 100}, newest(func(r store.AuditRecord) bool { return r.Tool == "paint" }, 100)},
		{"user and tool", store.AuditQuery{UserID: "user_alice", Tool: "echo", Limit: 100},
			newest(func(r store.AuditRecord) bool { return r.UserID == "user_alice" && r.Tool == "echo" }, 100)},
		{"since", store.AuditQuery{Since: recs[55].Time}, newest(func(r store.AuditRecord) bool { return !r.Time.Before(recs[55].Time) }, 100)},
		{"since in another zone", store.AuditQuery{Since: recs[58].Time.In(time.FixedZone("x", 3600))}, []store.AuditRecord{recs[59], recs[58]}},
		{"no match", store.AuditQuery{UserID: "user_nobody"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.ListAudit(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d records, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !got[i].Time.Equal(tc.want[i].Time) {
					t.Fatalf("record %d: time %v, want %v", i, got[i].Time, tc.want[i].Time)
				}
				g, w := got[i], tc.want[i]
				g.Time, w.Time = time.Time{}, time.Time{}
				g.ExpiresAt, w.ExpiresAt = g.ExpiresAt.UTC(), w.ExpiresAt.UTC()
				if !reflect.DeepEqual(g, w) {
					t.Errorf("record %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

func TestAdminAuditBadParameters(t *testing.T) {
	_, c, _, _ := setup(t)
	for _, tc := range []struct{ query, want string }{
		{"limit=0", "limit"},
		{"limit=1001", "from 1 to 1000"},
		{"limit=-3", "limit"},
		{"limit=ten", "limit"},
		{"since=yesterday", "RFC 3339"},
		{"since=2026-11-26", "RFC 3339"},
		{"user=a&user=b", "given 2 times"},
		{"users=a", `unknown parameter "users"`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			req, _ := http.NewRequest("GET", c.BaseURL+"/v1/audit?"+tc.query, nil)
			req.Header.Set("Authorization", "Bearer "+c.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body errorBody
			b, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.Error, tc.want) {
				t.Errorf("status %d, error %q; want 400 mentioning %q", resp.StatusCode, body.Error, tc.want)
			}
		})
	}
	// The client reports the server's reason.
	if _, err := c.ListAudit(context.Background(), store.AuditQuery{Limit: 5000}); err == nil || !strings.Contains(err.Error(), "from 1 to 1000") || !strings.Contains(err.Error(), "400") {
		t.Errorf("client with a bad limit: %v", err)
	}
}

func TestParseAuditQuery(t *testing.T) {
	since := time.Date(2026, 11, 26, 5, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		raw     string
		want    store.AuditQuery
		wantErr bool
	}{
		{"", store.AuditQuery{Limit: DefaultAuditLimit}, false},
		{"limit=1", store.AuditQuery{Limit: 1}, false},
		{"limit=1000&user=user_x&tool=t", store.AuditQuery{Limit: 1000, UserID: "user_x", Tool: "t"}, false},
		{"since=2026-11-26T05:00:00.123456789Z", store.AuditQuery{Since: since, Limit: DefaultAuditLimit}, false},
		{"since=2026-11-26T06:00:00.123456789%2B01:00", store.AuditQuery{Since: since, Limit: DefaultAuditLimit}, false},
		{"since=2026-11-26T06:00:00.123456789+01:00", store.AuditQuery{}, true}, // + is a space
		{"limit=", store.AuditQuery{Limit: DefaultAuditLimit}, false},
		{"limit=1e3", store.AuditQuery{}, true},
		{"tool=a&tool=a", store.AuditQuery{}, true},
		{"x=1", store.AuditQuery{}, true},
	} {
		v, err := url.ParseQuery(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseAuditQuery(v)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: error %v, want error %v", tc.raw, err, tc.wantErr)
			continue
		}
		if !got.Since.Equal(tc.want.Since) {
			t.Errorf("%q: since %v, want %v", tc.raw, got.Since, tc.want.Since)
		}
		got.Since, tc.want.Since = time.Time{}, time.Time{}
		if got != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.raw, got, tc.want)
		}
	}
}

// FuzzParseAuditQuery: any query string either fails with a message or
// gives a query within the limits that survives the client's encoding.
func FuzzParseAuditQuery(f *testing.F) {
	for _, s := range []string{"", "limit=10", "since=2026-11-26T05:00:00Z&user=u&tool=t", "since=2026-11-26T06:00:00.5%2B01:00",
		"limit=1001", "limit=-1", "user=a&user=b", "since=0000-01-01T00:00:00Z", "since=9999-12-31T23:59:59.999999999-23:59", "%zz", "tool=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseAuditQuery(v)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if q.Limit < 1 || q.Limit > MaxAuditLimit {
			t.Fatalf("limit %d out of range", q.Limit)
		}
		again, err := ParseAuditQuery(auditValues(q))
		if err != nil {
			t.Fatalf("re-parse of %v: %v", auditValues(q), err)
		}
		if !again.Since.Equal(q.Since) || again.UserID != q.UserID || again.Tool != q.Tool || again.Limit != q.Limit {
			t.Fatalf("round trip: %+v, want %+v", again, q)
		}
	})
}
