// Package gate decides which tools a caller may see and call.
//
// A tool's rule (plugin.Rules) comes from its plugin's manifest (the
// permissions every caller must hold) and can be replaced per tool by the
// operator in plugins.toml: permissions (all required), any_permissions (at
// least one), roles (the caller's role must be one of them) and
// organizations (the caller's organization must be one of them). Every
// non-empty part must hold; a rule with no parts admits any signed-in
// caller.
//
// Decide is pure and cheap: it allocates only to explain a denial. The
// explanation names what is missing in the words a client shows its user,
// for example
//
//	generateImage needs permission image_generation; you have none
//	report needs one of the permissions reports:read, reports:admin; you have none
//	deploy needs role admin; you have member
//	billing is not available to your organization
//
// When several parts fail, the first failing one in this order is named:
// organization, role, permissions, any permissions. Organization and role
// come first because no permission helps a caller outside them.
//
// The MCP layer (core/mcpserver) calls Decide to filter tools/list and to
// re-check every tools/call; ToolAccess feeds the plugin host's "tools"
// host function (plugin.CallOptions.Tools) for plugins like whoami.
package gate
