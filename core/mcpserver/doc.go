// Package mcpserver is toolgate's MCP endpoint: the streamable HTTP
// transport at /mcp and the legacy HTTP+SSE transport at /sse, serving the
// plugin host's tools filtered and enforced per caller by core/gate, with
// an audit record and metrics for every call and denial.
//
// # Wiring (what core/server constructs and mounts)
//
//	srv, err := mcpserver.New(mcpserver.Config{
//		Host: pluginHost, // *plugin.Host
//		CallerFromContext: func(ctx context.Context) (gate.Caller, bool) {
//			c, ok := auth.CallerFromContext(ctx)
//			return gate.Caller{UserID: c.UserID, Email: c.Email, OrganizationID: c.OrganizationID,
//				Role: c.Role, Permissions: c.Permissions, ClientID: c.ClientID, GrantID: c.GrantID}, ok
//		},
//		HideDenied:     cfg.HideDenied,
//		AllowedHosts:   cfg.AllowedHosts(),   // public_url's host (+ loopback in dev), or "*" if core/server checks Host itself
//		AllowedOrigins: cfg.AllowedOrigins(), // public_url's origin, or the configured list
//		Audit:          st,                               // store.Store
//		AuditRetention: cfg.AuditRetention,
//		Registerer:     prometheus.DefaultRegisterer,
//		Logger:         log,
//	})
//	mux.Handle("/mcp", srv.Guard(authServer.Protect(auth.PathMCP, srv.Handler())))
//	mux.Handle("/sse", srv.Guard(authServer.Protect(auth.PathSSE, srv.SSEHandler())))
//	...
//	defer srv.Close(ctx) // before closing the plugin host and the store
//
// Guard in front of the bearer middleware answers a bad Host or Origin
// with 403 before authentication; Handler and SSEHandler include it as
// well, so forgetting it is not a hole. Every method (POST, GET, DELETE)
// of both paths goes through the bearer middleware. The SSE message
// endpoint is the /sse path itself with ?sessionid=..., so one mount
// serves both.
//
// # One go-sdk server, filtered per caller
//
// There is one mcp.Server. Its tools follow the plugin host: on every
// reload (plugin.Host.Subscribe) the changed tools are re-registered and
// the removed ones removed (mcp.Server.AddTool/RemoveTools), and the
// go-sdk announces notifications/tools/list_changed. A receiving
// middleware filters tools/list to the tools the caller may use
// (gate.Decide over the tool's current rules) and each tool's handler
// re-checks the caller before calling the plugin.
//
// The alternative, an mcp.Server per distinct (snapshot, allowed tool
// set), was rejected: a stateful session is bound to the server that
// created it, so a caller whose permissions change on a token refresh
// would keep a stale server until it reconnects; it multiplies schema
// compilation and memory by the number of distinct permission sets; and
// it still needs the per-call re-check. Filtering one server costs one
// gate.Decide per tool on tools/list and one per call, well under a
// microsecond each.
//
// list_changed is exact per session: a sending middleware lets the
// go-sdk's broadcast through only to sessions whose visible tool list
// (a hash over the allowed tools' names and declarations) differs from
// the one the client last listed or was told about. "Sessions" here are
// stateful streamable sessions, SSE sessions and open 2026-07-28
// subscriptions/listen streams (whose baseline is the list when the
// stream opened). When a request arrives whose caller differs in
// permissions, role or organization from what a session of the same grant
// (the same client's refreshed token) last carried, the session's caller
// is updated; if that changes what it may see, the server makes the
// go-sdk broadcast again (it re-registers an unchanged tool, since the
// go-sdk has no per-session notification) and the same filter sends it
// only to the sessions concerned.
//
// # Protocol revisions: stateful or stateless
//
// The go-sdk v1.8.0 speaks 2026-07-28 (its newest), 2025-11-25,
// 2025-06-18 and 2025-03-26, and serves 2026-07-28 only from a stateless
// handler. Handler mounts a stateful and a stateless go-sdk handler and
// routes each request:
//
//   - 2026-07-28 and later (Mcp-Protocol-Version header): stateless. The
//     revision has no sessions (no Mcp-Session-Id, no initialize); clients
//     learn about list changes through subscriptions/listen, and progress
//     travels on the request's own stream.
//   - 2025-11-25 and 2025-06-18 clients that initialize: stateful. Their
//     only way to hear notifications/tools/list_changed is the session's
//     standalone GET stream, so they get a session (Mcp-Session-Id, 130
//     random bits), bound to the user who opened it: the go-sdk answers a
//     request on it with another user's token with 403, an unknown or
//     expired session with 404. Sessions idle for SessionIdleTimeout are
//     closed, and a user opening more than MaxSessionsPerUser sessions
//     (stateful and SSE together) closes their oldest. The cost is that a multi-replica deployment needs sticky
//     routing for these clients.
//   - A request without a session that is not an initialize (a lone
//     tools/call, as both SDKs accept): stateless.
//   - GET and DELETE: stateful (they only exist for sessions).
//
// The legacy SSE transport (2024-11-05) is always stateful by nature; its
// sessions are bound to their user by this package (the go-sdk's
// SSEHandler binds none): a POST to another user's session gets 403.
//
// Sessions live in the memory of the replica that opened them. Behind a
// load balancer, another replica answers a request naming a session it
// does not know (POST, GET or DELETE with its Mcp-Session-Id, or a POST to
// /sse?sessionid=...) with 404, and the client initializes a new session
// there; so the balancer needs affinity on Mcp-Session-Id for stateful
// clients, and /sse needs its stream's POSTs on the same replica for the
// stream's lifetime. Config.SessionIDPrefix (the replica's
// server.replica_id and a dot) starts every session ID, so a balancer can
// route on the ID alone. 2026-07-28 requests carry no session and may land
// on any replica.
//
// # Draining
//
// Drain, called when a graceful shutdown starts, waits until no tool call
// runs and no POST to a stateful session is being answered, then closes
// every open session and stream (stateful GET streams, SSE streams,
// 2026-07-28 listen streams), which would otherwise hold the shutdown
// until its deadline. Their clients reconnect through the balancer to
// another replica.
//
// # Transport security
//
// The go-sdk's DNS-rebinding check (a loopback socket must see a loopback
// Host) is switched off because it breaks reverse proxies on the same
// host; Guard checks the Host header against Config.AllowedHosts instead
// (falling back to the same loopback rule when the list is empty) and the
// Origin header against the request's own origin and
// Config.AllowedOrigins (403 otherwise; a request without Origin, which
// non-browser clients send, passes). Request bodies are limited to
// Config.MaxRequestBodyBytes (413) and headers to Config.MaxHeaderBytes
// (431).
//
// # Calls
//
// A call's arguments go to the plugin as the client sent them (the plugin
// validates them against its own schema); its text, image and structured
// content come back as MCP TextContent, ImageContent and
// structuredContent. Every plugin failure (*plugin.Error: timeout, trap,
// memory or output limit, bad output, guest error) is a tool error
// (IsError) with the plugin's readable message, never a protocol error or
// an HTTP error. A denied tool answers with a tool error naming what is
// missing ("paint needs permission image_generation; you have none") or,
// with Config.HideDenied, with the protocol error the go-sdk gives for an
// unknown tool. Progress a plugin reports becomes
// notifications/progress when the request carried a progress token; a
// client's cancellation (notifications/cancelled, or the request's HTTP
// connection closing on 2026-07-28) cancels the plugin call.
//
// With Config.ToolCallsPerMinute set, each user has a token bucket
// (Config.ToolCallBurst deep) shared by all their sessions; an allowed call
// beyond it is a tool error ("echo: too many tool calls; retry after 3
// seconds") with audit outcome "rate_limited", and the plugin is not
// called. A plugin whose every instance is busy and whose queue is full or
// too slow answers with the plugin host's "busy" error (outcome "busy").
//
// Every call and every denial produces one store.AuditRecord (time, user,
// organization, client, plugin, tool, decision, outcome, error kind,
// duration; never arguments or tokens), logged at once and appended to
// Config.Audit in the background with Config.AuditRetention (many records
// per durable write when the store is a store.AuditBatcher), and counts in
// toolgate_mcp_tool_calls_total and toolgate_mcp_tool_call_duration_seconds
// labelled by tool and outcome.
package mcpserver
