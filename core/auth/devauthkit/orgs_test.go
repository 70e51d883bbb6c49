package devauthkit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// apiGet sends an API-key-authenticated GET.
func apiGet(s *Server, target, apiKey string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	return do(s, req)
}

func orgUsers() []User {
	return append(DefaultUsers(),
		User{Email: "carol@example.com"}, // no organization
		User{Email: "dave@example.com", Role: "admin", Permissions: []string{"billing"}, Organization: "Globex"},
		User{Email: "erin@example.com", Role: "admin", Permissions: []string{"other"}, Organization: "Acme"},
	)
}

func mustIDs(t *testing.T, s *Server, email string) (string, string) {
	t.Helper()
	u, o, ok := s.IDs(email)
	if !ok {
		t.Fatalf("IDs(%s): no such user", email)
	}
	return u, o
}

type membershipJSON struct {
	Object         string `json:"object"`
	ID             string `json:"id"`
	UserID         string `json:"user_id"`
	OrganizationID string `json:"organization_id"`
	Role           struct {
		Slug string `json:"slug"`
	} `json:"role"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

type membershipListJSON struct {
	Data         []membershipJSON `json:"data"`
	ListMetadata struct {
		Before *string `json:"before"`
		After  *string `json:"after"`
	} `json:"list_metadata"`
}

func listMemberships(t *testing.T, s *Server, q url.Values) membershipListJSON {
	t.Helper()
	rec := apiGet(s, "/user_management/organization_memberships?"+q.Encode(), s.APIKey())
	if rec.Code != http.StatusOK {
		t.Fatalf("list memberships %v: status %d, body %s", q, rec.Code, rec.Body)
	}
	var out membershipListJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	return out
}

func TestIDs(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Users = orgUsers() })
	alice, acme := mustIDs(t, s, "ALICE@example.com")
	bob, acme2 := mustIDs(t, s, "bob@example.com")
	carol, none := mustIDs(t, s, "carol@example.com")
	_, globex := mustIDs(t, s, "dave@example.com")
	if !strings.HasPrefix(alice, "user_") || !strings.HasPrefix(acme, "org_") || alice == bob || alice == carol {
		t.Errorf("ids alice %q, bob %q, carol %q, acme %q: want distinct WorkOS-style ids", alice, bob, carol, acme)
	}
	if acme != acme2 || none != "" || globex == acme || globex == "" {
		t.Errorf("organizations: alice %q, bob %q, carol %q, dave %q", acme, acme2, none, globex)
	}
	if _, _, ok := s.IDs("nobody@example.com"); ok {
		t.Error("IDs of an unknown email succeeded")
	}
}

func TestListMemberships(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Users = orgUsers() })
	alice, acme := mustIDs(t, s, "alice@example.com")
	bob, _ := mustIDs(t, s, "bob@example.com")
	carol, _ := mustIDs(t, s, "carol@example.com")
	dave, globex := mustIDs(t, s, "dave@example.com")
	erin, _ := mustIDs(t, s, "erin@example.com")

	tests := []struct {
		name string
		q    url.Values
		want [][3]string // user, organization, role
	}{
		{"alice in acme", url.Values{"user_id": {alice}, "organization_id": {acme}, "statuses": {"active"}}, [][3]string{{alice, acme, "admin"}}},
		{"bob in acme", url.Values{"user_id": {bob}, "organization_id": {acme}}, [][3]string{{bob, acme, "member"}}},
		{"alice in globex", url.Values{"user_id": {alice}, "organization_id": {globex}}, nil},
		{"carol has none", url.Values{"user_id": {carol}}, nil},
		{"unknown user", url.Values{"user_id": {"user_01X"}}, nil},
		{"inactive only", url.Values{"user_id": {alice}, "statuses": {"inactive"}}, nil},
		{"inactive or active, comma-separated", url.Values{"user_id": {alice}, "statuses": {"inactive,active"}}, [][3]string{{alice, acme, "admin"}}},
		{"active, bracket form", url.Values{"user_id": {alice}, "statuses[]": {"active"}}, [][3]string{{alice, acme, "admin"}}},
		{"an organization, in configuration order", url.Values{"organization_id": {acme}}, [][3]string{{alice, acme, "admin"}, {bob, acme, "member"}, {erin, acme, "admin"}}},
		{"descending", url.Values{"organization_id": {acme}, "order": {"desc"}}, [][3]string{{erin, acme, "admin"}, {bob, acme, "member"}, {alice, acme, "admin"}}},
		{"no filter", url.Values{}, [][3]string{{alice, acme, "admin"}, {bob, acme, "member"}, {dave, globex, "admin"}, {erin, acme, "admin"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := listMemberships(t, s, tt.q)
			var got [][3]string
			for _, m := range out.Data {
				got = append(got, [3]string{m.UserID, m.OrganizationID, m.Role.Slug})
				if m.Object != "organization_membership" || !strings.HasPrefix(m.ID, "om_") || m.Status != "active" || m.CreatedAt == "" || m.UpdatedAt == "" {
					t.Errorf("membership %+v is not WorkOS-shaped", m)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("memberships = %v, want %v", got, tt.want)
			}
			if out.Data == nil {
				t.Error("data is null, want a list")
			}
		})
	}

	// Ids are stable across servers.
	other := newTestServer(t, func(c *Config) { c.Users = orgUsers() })
	a1 := listMemberships(t, s, url.Values{"user_id": {alice}})
	a2 := listMemberships(t, other, url.Values{"user_id": {alice}})
	if len(a1.Data) != 1 || len(a2.Data) != 1 || a1.Data[0].ID != a2.Data[0].ID {
		t.Errorf("membership ids differ across servers: %+v, %+v", a1.Data, a2.Data)
	}
}

func TestListMembershipsPagination(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Users = orgUsers() })
	_, acme := mustIDs(t, s, "alice@example.com")
	all := listMemberships(t, s, url.Values{"organization_id": {acme}}).Data
	if len(all) != 3 {
		t.Fatalf("%d memberships in acme, want 3", len(all))
	}
	ids := func(ms []membershipJSON) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	str := func(p *string) string {
		if p == nil {
			return "null"
		}
		return *p
	}
	tests := []struct {
		name              string
		q                 url.Values
		want              []string
		wantBefore, After string
	}{
		{"first page", url.Values{"limit": {"2"}}, ids(all[:2]), "null", all[1].ID},
		{"after", url.Values{"limit": {"2"}, "after": {all[1].ID}}, ids(all[2:]), all[2].ID, "null"},
		{"before", url.Values{"limit": {"1"}, "before": {all[2].ID}}, ids(all[1:2]), all[1].ID, all[1].ID},
		{"before the first", url.Values{"before": {all[0].ID}}, nil, "null", "null"},
		{"everything", url.Values{"limit": {"100"}}, ids(all), "null", "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Set("organization_id", acme)
			out := listMemberships(t, s, tt.q)
			if got := ids(out.Data); !slices.Equal(got, tt.want) {
				t.Errorf("page = %v, want %v", got, tt.want)
			}
			if b, a := str(out.ListMetadata.Before), str(out.ListMetadata.After); b != tt.wantBefore || a != tt.After {
				t.Errorf("list_metadata = before %s, after %s; want %s, %s", b, a, tt.wantBefore, tt.After)
			}
		})
	}
}

func TestListMembershipsRejects(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name   string
		query  string
		apiKey string
		want   int
	}{
		{"no api key", "user_id=u", "-", http.StatusUnauthorized},
		{"wrong api key", "user_id=u", "sk_wrong", http.StatusUnauthorized},
		{"limit zero", "limit=0", "", http.StatusUnprocessableEntity},
		{"limit too large", "limit=101", "", http.StatusUnprocessableEntity},
		{"limit not a number", "limit=ten", "", http.StatusUnprocessableEntity},
		{"unknown order", "order=random", "", http.StatusUnprocessableEntity},
		{"unknown status", "statuses=suspended", "", http.StatusUnprocessableEntity},
		{"repeated user", "user_id=a&user_id=b", "", http.StatusUnprocessableEntity},
		{"before and after", "before=om_1&after=om_2", "", http.StatusUnprocessableEntity},
		{"unknown cursor", "after=om_unknown", "", http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := s.APIKey()
			switch tt.apiKey {
			case "-":
				key = ""
			case "":
			default:
				key = tt.apiKey
			}
			rec := apiGet(s, "/user_management/organization_memberships?"+tt.query, key)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d (body %s)", rec.Code, tt.want, rec.Body)
			}
			var body struct{ Code, Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Code == "" || body.Message == "" {
				t.Errorf("body %s is not a WorkOS error", rec.Body)
			}
		})
	}
}

type roleJSON struct {
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

func listRoles(t *testing.T, s *Server, orgID string) map[string][]string {
	t.Helper()
	rec := apiGet(s, "/organizations/"+orgID+"/roles", s.APIKey())
	if rec.Code != http.StatusOK {
		t.Fatalf("list roles: status %d, body %s", rec.Code, rec.Body)
	}
	var out struct {
		Object string     `json:"object"`
		Data   []roleJSON `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	if out.Object != "list" {
		t.Errorf("object = %q, want list", out.Object)
	}
	roles := make(map[string][]string)
	for _, r := range out.Data {
		if r.Object != "role" || !strings.HasPrefix(r.ID, "role_") || r.Name == "" || r.Type != "EnvironmentRole" || r.CreatedAt == "" || r.UpdatedAt == "" || r.Permissions == nil {
			t.Errorf("role %+v is not WorkOS-shaped", r)
		}
		roles[r.Slug] = r.Permissions
	}
	return roles
}

func TestListRoles(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Users = orgUsers() })
	_, acme := mustIDs(t, s, "alice@example.com")
	_, globex := mustIDs(t, s, "dave@example.com")

	check := func(step, org string, want map[string][]string) {
		t.Helper()
		got := listRoles(t, s, org)
		if len(got) != len(want) {
			t.Errorf("%s: roles %q, want %q", step, got, want)
		}
		for slug, perms := range want {
			if !slices.Equal(got[slug], perms) {
				t.Errorf("%s: role %s has %q, want %q", step, slug, got[slug], perms)
			}
		}
	}
	// erin is an admin of Acme too, but alice comes first.
	check("acme", acme, map[string][]string{"admin": {"image_generation"}, "member": {}})
	check("globex", globex, map[string][]string{"admin": {"billing"}})

	if err := s.SetPermissions("bob@example.com", []string{"reports"}); err != nil {
		t.Fatal(err)
	}
	check("after SetPermissions(bob)", acme, map[string][]string{"admin": {"image_generation"}, "member": {"reports"}})
	if err := s.SetPermissions("erin@example.com", nil); err != nil {
		t.Fatal(err)
	}
	check("after SetPermissions(erin)", acme, map[string][]string{"admin": {}, "member": {"reports"}})
	check("globex is unaffected", globex, map[string][]string{"admin": {"billing"}})
	if err := s.SetPermissions("carol@example.com", []string{"x"}); err != nil {
		t.Fatal(err)
	}
	check("a user without an organization changes no role", acme, map[string][]string{"admin": {}, "member": {"reports"}})

	for name, tc := range map[string]struct {
		path, key string
		want      int
	}{
		"unknown organization": {"/organizations/org_01UNKNOWN/roles", s.APIKey(), http.StatusNotFound},
		"no api key":           {"/organizations/" + acme + "/roles", "", http.StatusUnauthorized},
		"wrong api key":        {"/organizations/" + acme + "/roles", "sk_wrong", http.StatusUnauthorized},
	} {
		if rec := apiGet(s, tc.path, tc.key); rec.Code != tc.want {
			t.Errorf("%s: status %d, want %d", name, rec.Code, tc.want)
		}
	}
}

func TestRoleName(t *testing.T) {
	for in, want := range map[string]string{"admin": "Admin", "billing-admin": "Billing-admin", "émile": "Émile", "": "", "A": "A"} {
		if got := roleName(in); got != want {
			t.Errorf("roleName(%q) = %q, want %q", in, got, want)
		}
	}
}
