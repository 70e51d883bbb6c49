package authkit

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRolesResponse(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    map[string][]string
		wantErr string
	}{
		{
			name: "workos shape",
			body: `{"object":"list","data":[
				{"object":"role","id":"role_1","name":"Admin","slug":"admin","description":"","permissions":["image_generation","reports"],"type":"EnvironmentRole","created_at":"2025-01-01T00:00:00.000Z","updated_at":"2025-01-01T00:00:00.000Z"},
				{"object":"role","id":"role_2","name":"Member","slug":"member","description":"","permissions":[],"type":"OrganizationRole","created_at":"2025-01-01T00:00:00.000Z","updated_at":"2025-01-01T00:00:00.000Z"}]}`,
			want: map[string][]string{"admin": {"image_generation", "reports"}, "member": {}},
		},
		{name: "null and missing permissions", body: `{"data":[{"slug":"a","permissions":null},{"slug":"b"}]}`, want: map[string][]string{"a": {}, "b": {}}},
		{name: "no roles", body: `{"data":[]}`, want: map[string][]string{}},
		{name: "unknown fields are ignored", body: `{"data":[{"slug":"a","permissions":["p"],"extra":{"x":[1]}}],"list_metadata":{}}`, want: map[string][]string{"a": {"p"}}},
		{name: "no data", body: `{"object":"list"}`, wantErr: "no data array"},
		{name: "null data", body: `{"data":null}`, wantErr: "no data array"},
		{name: "empty slug", body: `{"data":[{"slug":"","permissions":["p"]}]}`, wantErr: "no slug"},
		{name: "duplicate slug", body: `{"data":[{"slug":"a"},{"slug":"a","permissions":["p"]}]}`, wantErr: "listed twice"},
		{name: "empty permission", body: `{"data":[{"slug":"a","permissions":["p",""]}]}`, wantErr: "empty permission"},
		{name: "permissions not strings", body: `{"data":[{"slug":"a","permissions":[1]}]}`, wantErr: "decode roles"},
		{name: "data not a list", body: `{"data":{"slug":"a"}}`, wantErr: "decode roles"},
		{name: "trailing data", body: `{"data":[]} {}`, wantErr: "decode roles"},
		{name: "not json", body: `<html>`, wantErr: "decode roles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRolesResponse([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRolesResponse: %v", err)
			}
			if !maps.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("roles = %q, want %q", got, tt.want)
			}
			for slug, perms := range got {
				if perms == nil {
					t.Errorf("role %q has nil permissions", slug)
				}
			}
		})
	}
}

func FuzzParseRolesResponse(f *testing.F) {
	f.Add([]byte(`{"object":"list","data":[{"object":"role","id":"role_1","name":"Admin","slug":"admin","description":"","permissions":["image_generation"],"type":"EnvironmentRole","created_at":"2025-01-01T00:00:00.000Z","updated_at":"2025-01-01T00:00:00.000Z"}]}`))
	f.Add([]byte(`{"data":[{"slug":"a","permissions":null},{"slug":"b"}]}`))
	f.Add([]byte(`{"data":[{"slug":"a"},{"slug":"a"}]}`))
	f.Add([]byte(`{"data":[{"slug":"a","permissions":["p",""]}]}`))
	f.Add([]byte(`{"data":null}`))
	f.Add([]byte(`{"DATA":[{"SLUG":"x","Permissions":["y"]}]}`))
	f.Add([]byte(`{"data":[]} {}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		roles, err := parseRolesResponse(body)
		if err != nil {
			if roles != nil {
				t.Fatalf("error %v came with roles %q", err, roles)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		for slug, perms := range roles {
			if slug == "" || perms == nil || slices.Contains(perms, "") {
				t.Fatalf("accepted role %q with permissions %#v", slug, perms)
			}
		}
		// What was decoded survives a round trip through the WorkOS shape.
		type role struct {
			Slug        string   `json:"slug"`
			Permissions []string `json:"permissions"`
		}
		doc := struct {
			Data []role `json:"data"`
		}{Data: []role{}}
		for _, slug := range slices.Sorted(maps.Keys(roles)) {
			doc.Data = append(doc.Data, role{slug, roles[slug]})
		}
		again, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseRolesResponse(again)
		if err != nil || !maps.EqualFunc(back, roles, slices.Equal) {
			t.Fatalf("round trip of %q gave %q, %v", roles, back, err)
		}
	})
}

// fill runs a lookup of key to completion with result role.
func fill(t *testing.T, c *permCache, key permKey, role string) {
	t.Helper()
	j, _, ok := c.lookup(key)
	if ok || !j.leader {
		t.Fatalf("lookup(%v): cached %v, leader %v; want a new flight", key, ok, j.leader)
	}
	c.finish(key, j.flight, permResult{role: role, permissions: []string{}}, nil)
}

func cachedRole(c *permCache, key permKey) (string, bool) {
	j, res, ok := c.lookup(key)
	if !ok {
		// Leave no flight behind for the next lookup.
		c.finish(key, j.flight, permResult{}, errTestNoResult)
		return "", false
	}
	return res.role, true
}

var errTestNoResult = &UpstreamError{Op: "test"}

func TestPermCacheIsBoundedLRU(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newPermCache(time.Minute, 2, func() time.Time { return now })
	a, b, d := permKey{"u_a", "o"}, permKey{"u_b", "o"}, permKey{"u_d", "o"}
	fill(t, c, a, "ra")
	fill(t, c, b, "rb")
	if role, ok := cachedRole(c, a); !ok || role != "ra" { // a is now the most recently used
		t.Fatalf("a = %q, %v; want cached ra", role, ok)
	}
	fill(t, c, d, "rd")
	if got := c.count(); got != 2 {
		t.Errorf("cache holds %d entries, want 2", got)
	}
	if _, ok := cachedRole(c, b); ok {
		t.Error("b, the least recently used, is still cached")
	}
	for key, want := range map[permKey]string{a: "ra", d: "rd"} {
		if role, ok := cachedRole(c, key); !ok || role != want {
			t.Errorf("%v = %q, %v; want cached %q", key, role, ok, want)
		}
	}
}

func TestPermCacheFlights(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newPermCache(time.Minute, 10, func() time.Time { return now })
	key := permKey{"u", "o"}
	first, _, _ := c.lookup(key)
	second, _, _ := c.lookup(key)
	if !first.leader || second.leader || first.flight != second.flight {
		t.Fatalf("two lookups of a missing key: leaders %v, %v, same flight %v; want one flight, one leader",
			first.leader, second.leader, first.flight == second.flight)
	}
	c.finish(key, first.flight, permResult{}, errTestNoResult)
	select {
	case <-second.flight.done:
	default:
		t.Fatal("finish did not release the waiters")
	}
	if second.flight.err != errTestNoResult {
		t.Errorf("waiter sees error %v", second.flight.err)
	}
	if c.count() != 0 {
		t.Error("an error was cached")
	}
	third, _, _ := c.lookup(key)
	if !third.leader || third.flight == first.flight {
		t.Error("after a failed flight the next lookup does not start a new one")
	}
}
