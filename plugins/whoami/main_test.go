package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/sdktest"
)

var serverTools = []abi.ToolAccess{
	{Name: "add", Plugin: "add", Allowed: true},
	{Name: "generateImage", Plugin: "generateimage", Allowed: false, Missing: "permission image_generation"},
	{Name: "whoami", Plugin: "whoami", Allowed: true},
}

func TestWhoami(t *testing.T) {
	alice := abi.Caller{UserID: "user_alice", Email: "alice@example.com", OrganizationID: "org_acme", Role: "admin",
		Permissions: []string{"image_generation"}}
	bob := abi.Caller{UserID: "user_bob", Email: "bob@example.com", OrganizationID: "org_acme", Role: "member"}
	allowedAll := slices.Clone(serverTools)
	allowedAll[1].Allowed, allowedAll[1].Missing = true, ""
	tests := []struct {
		name       string
		caller     abi.Caller
		tools      []abi.ToolAccess
		grants     *abi.Capabilities
		wantText   []string
		rejectText []string
		wantTools  int
		toolsError bool
	}{
		{
			name: "alice may generate images", caller: alice, tools: allowedAll,
			wantText: []string{"You are alice@example.com (user user_alice).", "Organization: org_acme", "Role: admin",
				"Permissions: image_generation", "Tools you can use:\n- add (add)\n- generateImage (generateimage)\n- whoami (whoami)\n"},
			rejectText: []string{"cannot use"},
			wantTools:  3,
		},
		{
			name: "bob lacks image_generation", caller: bob, tools: serverTools,
			wantText: []string{"You are bob@example.com (user user_bob).", "Role: member", "Permissions: none",
				"Tools you cannot use:\n- generateImage (generateimage): missing permission image_generation\n"},
			wantTools: 3,
		},
		{
			name: "no email, no organization, no tools", caller: abi.Caller{UserID: "user_x"},
			wantText:  []string{"You are user user_x.", "Organization: none", "Role: none", "Tools: none on this server."},
			wantTools: 0,
		},
		{
			name: "tools not granted still answers the identity", caller: bob, tools: serverTools, grants: &abi.Capabilities{},
			wantText:   []string{"You are bob@example.com", "The tool list is not available:", "not granted"},
			rejectText: []string{"Tools you"},
			toolsError: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sdktest.New(t, sdktest.Options{Caller: tt.caller, Tools: tt.tools, Grants: tt.grants})
			res := p.Call("whoami", map[string]any{})
			if res.Error != nil || res.IsError {
				t.Fatalf("whoami failed: %s", res.Raw)
			}
			text := res.Text()
			for _, w := range tt.wantText {
				if !strings.Contains(text, w) {
					t.Errorf("text does not contain %q:\n%s", w, text)
				}
			}
			for _, r := range tt.rejectText {
				if strings.Contains(text, r) {
					t.Errorf("text contains %q:\n%s", r, text)
				}
			}
			var out WhoamiResult
			if err := json.Unmarshal(res.Structured, &out); err != nil {
				t.Fatalf("structured %s: %v", res.Structured, err)
			}
			if out.UserID != tt.caller.UserID || out.Email != tt.caller.Email || out.Role != tt.caller.Role ||
				out.OrganizationID != tt.caller.OrganizationID || len(out.Permissions) != len(tt.caller.Permissions) {
				t.Errorf("structured identity = %+v, want %+v", out, tt.caller)
			}
			if len(out.Tools) != tt.wantTools || (out.ToolsError != "") != tt.toolsError {
				t.Errorf("structured tools = %+v (error %q), want %d tools, error %t", out.Tools, out.ToolsError, tt.wantTools, tt.toolsError)
			}
			for i, tool := range out.Tools {
				want := tt.tools[i]
				if tool.Name != want.Name || tool.Plugin != want.Plugin || tool.Allowed != want.Allowed || tool.Missing != want.Missing {
					t.Errorf("tool %d = %+v, want %+v", i, tool, want)
				}
			}
		})
	}
}

func TestManifest(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{})
	m := p.Manifest()
	if m.Name != "whoami" || len(m.Tools) != 1 || !m.Capabilities.Tools {
		t.Fatalf("manifest = %+v, want plugin whoami with one tool and the tools capability", m)
	}
	c := m.Capabilities
	if len(c.HTTP) != 0 || c.KV || len(c.Config) != 0 || len(c.Secrets) != 0 || c.Progress {
		t.Errorf("capabilities = %+v, want only tools", c)
	}
	tool := m.Tools[0]
	if len(tool.Permissions) != 0 || len(tool.OutputSchema) == 0 || tool.Annotations == nil || !tool.Annotations.ReadOnly {
		t.Errorf("tool = %+v, want no permissions, an output schema and read-only", tool)
	}
	if res := p.Call("whoami", `{"x":1}`); res.Error == nil || res.Error.Code != abi.ErrInvalidArguments {
		t.Errorf("whoami with an unknown argument = %s, want invalid_arguments", res.Raw)
	}
}
