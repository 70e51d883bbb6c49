package gate

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/sdk/abi"
)

var (
	alice = Caller{UserID: "user_alice", Email: "alice@example.com", OrganizationID: "org_acme", Role: "admin", Permissions: []string{"image_generation"}}
	bob   = Caller{UserID: "user_bob", Email: "bob@example.com", OrganizationID: "org_acme", Role: "member"}
	carol = Caller{UserID: "user_carol", OrganizationID: "org_other", Role: "member", Permissions: []string{"reports:read", "billing"}}
	dave  = Caller{UserID: "user_dave"} // signed in, no organization, role or permissions
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		rules   plugin.Rules
		caller  Caller
		allowed bool
		missing string
		message string // for tool "generateImage"
	}{
		{name: "empty rules admit alice", rules: plugin.Rules{}, caller: alice, allowed: true},
		{name: "empty rules admit a caller with nothing", rules: plugin.Rules{}, caller: dave, allowed: true},
		{name: "permission held", rules: plugin.Rules{Permissions: []string{"image_generation"}}, caller: alice, allowed: true},
		{
			name: "permission missing, none held", rules: plugin.Rules{Permissions: []string{"image_generation"}}, caller: bob,
			missing: "permission image_generation",
			message: "generateImage needs permission image_generation; you have none",
		},
		{
			name: "permission missing, others held", rules: plugin.Rules{Permissions: []string{"image_generation"}}, caller: carol,
			missing: "permission image_generation",
			message: "generateImage needs permission image_generation; you have billing, reports:read",
		},
		{
			name: "all permissions: only the missing ones are named", rules: plugin.Rules{Permissions: []string{"billing", "image_generation", "video"}}, caller: carol,
			missing: "permissions image_generation, video",
			message: "generateImage needs permissions image_generation, video; you have billing, reports:read",
		},
		{name: "all permissions held", rules: plugin.Rules{Permissions: []string{"billing", "reports:read"}}, caller: carol, allowed: true},
		{name: "any permission: one held", rules: plugin.Rules{AnyPermissions: []string{"reports:admin", "reports:read"}}, caller: carol, allowed: true},
		{
			name: "any permission: none held", rules: plugin.Rules{AnyPermissions: []string{"reports:read", "reports:admin"}}, caller: bob,
			missing: "one of the permissions reports:read, reports:admin",
			message: "generateImage needs one of the permissions reports:read, reports:admin; you have none",
		},
		{
			name: "any permission: a single choice reads like a plain permission", rules: plugin.Rules{AnyPermissions: []string{"reports:read"}}, caller: alice,
			missing: "permission reports:read",
			message: "generateImage needs permission reports:read; you have image_generation",
		},
		{name: "role held", rules: plugin.Rules{Roles: []string{"admin"}}, caller: alice, allowed: true},
		{
			name: "role missing", rules: plugin.Rules{Roles: []string{"admin"}}, caller: bob,
			missing: "role admin",
			message: "generateImage needs role admin; you have member",
		},
		{
			name: "one of several roles, caller has no role", rules: plugin.Rules{Roles: []string{"admin", "owner"}}, caller: dave,
			missing: "one of the roles admin, owner",
			message: "generateImage needs one of the roles admin, owner; you have no role",
		},
		{name: "organization allowed", rules: plugin.Rules{Organizations: []string{"org_acme"}}, caller: bob, allowed: true},
		{
			name: "organization denied", rules: plugin.Rules{Organizations: []string{"org_acme"}}, caller: carol,
			missing: "membership in an organization it is available to",
			message: "generateImage is not available to your organization",
		},
		{
			name: "no organization is not an empty-string match", rules: plugin.Rules{Organizations: []string{"org_acme"}}, caller: dave,
			missing: "membership in an organization it is available to",
			message: "generateImage is not available to your organization",
		},
		{
			name: "organization is checked before permissions", rules: plugin.Rules{Organizations: []string{"org_acme"}, Permissions: []string{"video"}}, caller: carol,
			missing: "membership in an organization it is available to",
			message: "generateImage is not available to your organization",
		},
		{
			name: "role is checked before permissions", rules: plugin.Rules{Roles: []string{"admin"}, Permissions: []string{"image_generation"}}, caller: bob,
			missing: "role admin",
			message: "generateImage needs role admin; you have member",
		},
		{
			name: "every part must hold", rules: plugin.Rules{Organizations: []string{"org_acme"}, Roles: []string{"admin"}, Permissions: []string{"image_generation"}, AnyPermissions: []string{"video", "audio"}}, caller: alice,
			missing: "one of the permissions video, audio",
			message: "generateImage needs one of the permissions video, audio; you have image_generation",
		},
		{name: "every part holds", rules: plugin.Rules{Organizations: []string{"org_acme"}, Roles: []string{"admin"}, Permissions: []string{"image_generation"}, AnyPermissions: []string{"video", "image_generation"}}, caller: alice, allowed: true},
		{
			name: "matching is case-sensitive", rules: plugin.Rules{Permissions: []string{"Image_Generation"}}, caller: alice,
			missing: "permission Image_Generation",
			message: "generateImage needs permission Image_Generation; you have image_generation",
		},
		{
			name: "duplicate required permissions are named once", rules: plugin.Rules{Permissions: []string{"video", "video"}}, caller: bob,
			missing: "permission video",
			message: "generateImage needs permission video; you have none",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.rules, tt.caller)
			if d.Allowed != tt.allowed {
				t.Fatalf("Allowed = %v, want %v (decision %+v)", d.Allowed, tt.allowed, d)
			}
			if d.Missing != tt.missing {
				t.Errorf("Missing = %q, want %q", d.Missing, tt.missing)
			}
			if got := d.Message("generateImage"); got != tt.message {
				t.Errorf("Message = %q, want %q", got, tt.message)
			}
		})
	}
}

// TestDecideUsersByRules checks every dev user against every rule shape:
// a decision is allowed exactly when the caller meets each non-empty part.
func TestDecideUsersByRules(t *testing.T) {
	rules := map[string]plugin.Rules{
		"open":        {},
		"image":       {Permissions: []string{"image_generation"}},
		"admins":      {Roles: []string{"admin"}},
		"acme":        {Organizations: []string{"org_acme"}},
		"reports-any": {AnyPermissions: []string{"reports:read", "reports:admin"}},
	}
	want := map[string]map[string]bool{
		"alice": {"open": true, "image": true, "admins": true, "acme": true, "reports-any": false},
		"bob":   {"open": true, "image": false, "admins": false, "acme": true, "reports-any": false},
		"carol": {"open": true, "image": false, "admins": false, "acme": false, "reports-any": true},
		"dave":  {"open": true, "image": false, "admins": false, "acme": false, "reports-any": false},
	}
	users := map[string]Caller{"alice": alice, "bob": bob, "carol": carol, "dave": dave}
	for user, c := range users {
		for name, r := range rules {
			d := Decide(r, c)
			if d.Allowed != want[user][name] {
				t.Errorf("%s × %s: Allowed = %v, want %v", user, name, d.Allowed, want[user][name])
			}
			if d.Allowed != (d.Missing == "") {
				t.Errorf("%s × %s: Allowed = %v but Missing = %q", user, name, d.Allowed, d.Missing)
			}
		}
	}
}

func TestHavePermissionsIsBounded(t *testing.T) {
	var perms []string
	for _, p := range "abcdefghijkl" {
		perms = append(perms, "p"+string(p))
	}
	got := Decide(plugin.Rules{Permissions: []string{"x"}}, Caller{Permissions: perms}).Message("t")
	want := "t needs permission x; you have pa, pb, pc, pd, pe, pf, pg, ph, pi, pj and 2 more"
	if got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
}

func TestToolAccess(t *testing.T) {
	snap := plugin.Snapshot{Generation: 3, Tools: []plugin.Tool{
		{Name: "add", Plugin: "add", Spec: abi.Tool{Name: "add", Description: "Adds.", InputSchema: json.RawMessage(`{"type":"object"}`)}},
		{Name: "generateImage", Plugin: "generateimage", Spec: abi.Tool{Name: "generateImage", Description: "Paints."}, Rules: plugin.Rules{Permissions: []string{"image_generation"}}},
	}}
	tests := []struct {
		caller Caller
		want   []abi.ToolAccess
	}{
		{alice, []abi.ToolAccess{
			{Name: "add", Plugin: "add", Description: "Adds.", Allowed: true},
			{Name: "generateImage", Plugin: "generateimage", Description: "Paints.", Allowed: true},
		}},
		{bob, []abi.ToolAccess{
			{Name: "add", Plugin: "add", Description: "Adds.", Allowed: true},
			{Name: "generateImage", Plugin: "generateimage", Description: "Paints.", Missing: "permission image_generation"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.caller.UserID, func(t *testing.T) {
			if got := ToolAccess(snap, tt.caller); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ToolAccess =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	if got := ToolAccess(plugin.Snapshot{}, alice); got == nil || len(got) != 0 {
		t.Errorf("ToolAccess of an empty snapshot = %#v, want an empty non-nil list", got)
	}
}

func TestCallerABICopiesPermissions(t *testing.T) {
	c := Caller{UserID: "u", Permissions: []string{"a"}, GrantID: "g", ClientID: "c"}
	a := c.ABI()
	a.Permissions[0] = "changed"
	if c.Permissions[0] != "a" {
		t.Fatal("ABI aliases the caller's permissions")
	}
	if a.UserID != "u" || a.ClientID != "c" {
		t.Errorf("ABI = %+v", a)
	}
	if got := (Caller{}).ABI().Permissions; got == nil {
		t.Error("ABI of a caller without permissions has nil Permissions; the ABI wants []")
	}
}

func BenchmarkDecideAllowed(b *testing.B) {
	r := plugin.Rules{Permissions: []string{"image_generation"}, Roles: []string{"admin", "member"}}
	for b.Loop() {
		if !Decide(r, alice).Allowed {
			b.Fatal("denied")
		}
	}
}
