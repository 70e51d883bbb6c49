// Command whoami is a toolgate plugin with one tool, whoami, that tells the
// caller who they are (user, email, organization, role, permissions) and
// which of the server's tools they may use, naming what is missing for each
// one they may not. It answers questions such as "do I have the permissions
// to use the image generation tool?".
//
// It needs the "tools" capability (sdk.UseTools), granted in plugins.toml
// with list_tools = true. Build it as a WebAssembly reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o whoami.wasm ./plugins/whoami
package main

import (
	"context"
	"strings"

	"github.com/toolgate/toolgate/sdk"
)

// WhoamiArgs are whoami's arguments: none.
type WhoamiArgs struct{}

// ToolStatus is one tool on the server as the caller sees it.
type ToolStatus struct {
	Name    string `json:"name" jsonschema:"the tool's name"`
	Plugin  string `json:"plugin" jsonschema:"the plugin serving it"`
	Allowed bool   `json:"allowed" jsonschema:"whether the caller may use it"`
	Missing string `json:"missing,omitempty" jsonschema:"what the caller lacks, when not allowed"`
}

// WhoamiResult is whoami's structured result.
type WhoamiResult struct {
	UserID         string       `json:"user_id" jsonschema:"the caller's AuthKit user ID"`
	Email          string       `json:"email,omitempty" jsonschema:"the caller's email address"`
	OrganizationID string       `json:"organization_id,omitempty" jsonschema:"the organization the caller signed in to"`
	Role           string       `json:"role,omitempty" jsonschema:"the caller's role in that organization"`
	Permissions    []string     `json:"permissions" jsonschema:"the caller's permissions"`
	Tools          []ToolStatus `json:"tools" jsonschema:"every tool on the server, with whether the caller may use it"`
	// ToolsError is set when the tool list could not be read.
	ToolsError string `json:"tools_error,omitempty" jsonschema:"why the tool list is missing, if it is"`
}

func init() {
	sdk.Plugin("whoami", "1.0.0", "Tells the caller who they are and which tools they can use.", sdk.UseTools())
	sdk.Tool("whoami",
		"Show who you are signed in as (user, email, organization, role, permissions) and every tool on this server "+
			"with whether you may use it and, if not, which permission, role or organization is missing. "+
			"Use it to check whether you have the permissions a tool requires, e.g. for image generation.",
		whoami,
		sdk.Title("Who am I"),
		sdk.Output[WhoamiResult](),
		sdk.Annotations(sdk.ToolAnnotations{ReadOnly: true, Idempotent: true}))
}

func whoami(ctx context.Context, _ WhoamiArgs) (sdk.Result, error) {
	c := sdk.Caller(ctx)
	out := WhoamiResult{
		UserID: c.UserID, Email: c.Email, OrganizationID: c.OrganizationID, Role: c.Role,
		Permissions: c.Permissions, Tools: []ToolStatus{},
	}
	if out.Permissions == nil {
		out.Permissions = []string{}
	}
	tools, err := sdk.Tools(ctx)
	if err != nil {
		// The identity is still worth answering; say why the list is missing.
		sdk.LogWarn(ctx, "whoami: reading the tool list failed", "err", err.Error())
		out.ToolsError = err.Error()
	}
	for _, t := range tools {
		out.Tools = append(out.Tools, ToolStatus{Name: t.Name, Plugin: t.Plugin, Allowed: t.Allowed, Missing: t.Missing})
	}
	return sdk.Text(render(out)).WithStructured(out), nil
}

// render writes the result as text for the model and the user.
func render(r WhoamiResult) string {
	var b strings.Builder
	b.WriteString("You are ")
	if r.Email != "" {
		b.WriteString(r.Email + " (user " + r.UserID + ")")
	} else {
		b.WriteString("user " + r.UserID)
	}
	b.WriteString(".\n")
	b.WriteString("Organization: " + orNone(r.OrganizationID) + "\n")
	b.WriteString("Role: " + orNone(r.Role) + "\n")
	if len(r.Permissions) == 0 {
		b.WriteString("Permissions: none\n")
	} else {
		b.WriteString("Permissions: " + strings.Join(r.Permissions, ", ") + "\n")
	}
	if r.ToolsError != "" {
		b.WriteString("The tool list is not available: " + r.ToolsError + "\n")
		return b.String()
	}
	if len(r.Tools) == 0 {
		b.WriteString("Tools: none on this server.\n")
		return b.String()
	}
	var allowed, denied []ToolStatus
	for _, t := range r.Tools {
		if t.Allowed {
			allowed = append(allowed, t)
		} else {
			denied = append(denied, t)
		}
	}
	b.WriteString("Tools you can use:")
	if len(allowed) == 0 {
		b.WriteString(" none")
	}
	b.WriteString("\n")
	for _, t := range allowed {
		b.WriteString("- " + t.Name + " (" + t.Plugin + ")\n")
	}
	if len(denied) > 0 {
		b.WriteString("Tools you cannot use:\n")
		for _, t := range denied {
			b.WriteString("- " + t.Name + " (" + t.Plugin + "): missing " + orUnknown(t.Missing) + "\n")
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "an unstated requirement"
	}
	return s
}

// main is not run: a reactor's host calls the exports after _initialize.
func main() {}
