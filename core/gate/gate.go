package gate

import (
	"slices"
	"strconv"
	"strings"

	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/sdk/abi"
)

// Caller is the identity a tool call is made for: what AuthKit vouched for
// at the grant's last sign-in or refresh, and the OAuth client and grant
// the bearer token was issued under. It never holds a token.
type Caller struct {
	UserID         string
	Email          string
	OrganizationID string
	Role           string
	Permissions    []string
	ClientID       string
	GrantID        string
}

// ABI returns the caller as the plugin ABI passes it to a guest. The
// permissions slice is copied so the guest side cannot alias the caller's.
func (c Caller) ABI() abi.Caller {
	perms := make([]string, len(c.Permissions))
	copy(perms, c.Permissions)
	return abi.Caller{
		UserID:         c.UserID,
		Email:          c.Email,
		OrganizationID: c.OrganizationID,
		Role:           c.Role,
		Permissions:    perms,
		ClientID:       c.ClientID,
	}
}

// Decision is the outcome of Decide.
type Decision struct {
	// Allowed says whether the caller may list and call the tool.
	Allowed bool
	// Missing says what the caller lacks, in words, for example
	// "permission image_generation" or "one of the roles admin, owner";
	// empty when allowed. It is what abi.ToolAccess.Missing carries.
	Missing string

	// have completes a "needs" sentence: what the caller has instead.
	have string
	// org marks an organization denial, which reads differently.
	org bool
}

// Message is the denial explained for a client, naming the tool, for
// example "generateImage needs permission image_generation; you have none".
// It is empty when the decision allows.
func (d Decision) Message(tool string) string {
	switch {
	case d.Allowed:
		return ""
	case d.org:
		return tool + " is not available to your organization"
	default:
		return tool + " needs " + d.Missing + "; you have " + d.have
	}
}

// Decide applies rules to caller c. Matching is exact and case-sensitive,
// as AuthKit slugs and IDs are.
func Decide(rules plugin.Rules, c Caller) Decision {
	if len(rules.Organizations) > 0 && (c.OrganizationID == "" || !slices.Contains(rules.Organizations, c.OrganizationID)) {
		return Decision{Missing: "membership in an organization it is available to", org: true}
	}
	if len(rules.Roles) > 0 && (c.Role == "" || !slices.Contains(rules.Roles, c.Role)) {
		have := c.Role
		if have == "" {
			have = "no role"
		}
		return Decision{Missing: oneOf("role", "the roles", rules.Roles), have: have}
	}
	if len(rules.Permissions) > 0 {
		var missing []string
		for _, p := range rules.Permissions {
			if !slices.Contains(c.Permissions, p) && !slices.Contains(missing, p) {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			word := "permission "
			if len(missing) > 1 {
				word = "permissions "
			}
			return Decision{Missing: word + strings.Join(missing, ", "), have: havePermissions(c.Permissions)}
		}
	}
	if len(rules.AnyPermissions) > 0 && !slices.ContainsFunc(rules.AnyPermissions, func(p string) bool { return slices.Contains(c.Permissions, p) }) {
		return Decision{Missing: oneOf("permission", "the permissions", rules.AnyPermissions), have: havePermissions(c.Permissions)}
	}
	return Decision{Allowed: true}
}

// oneOf words a choice: "role admin" for one, "one of the roles a, b" for
// several.
func oneOf(single, plural string, values []string) string {
	if len(values) == 1 {
		return single + " " + values[0]
	}
	return "one of " + plural + " " + strings.Join(values, ", ")
}

// maxListedPermissions bounds how many of the caller's own permissions a
// denial lists, so a message stays readable.
const maxListedPermissions = 10

// havePermissions words the caller's permissions for a denial.
func havePermissions(perms []string) string {
	if len(perms) == 0 {
		return "none"
	}
	sorted := slices.Clone(perms)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	if len(sorted) > maxListedPermissions {
		rest := len(sorted) - maxListedPermissions
		return strings.Join(sorted[:maxListedPermissions], ", ") + " and " + strconv.Itoa(rest) + " more"
	}
	return strings.Join(sorted, ", ")
}

// ToolAccess lists every tool of snap as caller c sees it, sorted by name
// (the snapshot's order): whether c may use it and, if not, what is
// missing. It is what plugin.CallOptions.Tools returns to a plugin granted
// the "tools" capability.
func ToolAccess(snap plugin.Snapshot, c Caller) []abi.ToolAccess {
	out := make([]abi.ToolAccess, 0, len(snap.Tools))
	for _, t := range snap.Tools {
		d := Decide(t.Rules, c)
		out = append(out, abi.ToolAccess{
			Name:        t.Name,
			Plugin:      t.Plugin,
			Description: t.Spec.Description,
			Allowed:     d.Allowed,
			Missing:     d.Missing,
		})
	}
	return out
}
