// Package auth is toolgate's OAuth 2.1 authorization server for MCP clients
// and the bearer-token check of its protected resources (/mcp and /sse).
//
// MCP clients discover us through RFC 9728 and RFC 8414 metadata, register
// with RFC 7591 dynamic client registration, and run the authorization
// code flow with PKCE S256. Users approve each client on a consent page and
// sign in upstream at WorkOS AuthKit (an [Upstream], normally
// *authkit.Upstream; the development AuthKit in local runs). What AuthKit
// vouches for (user, organization, role, permissions) is stored as a
// store.Grant; the client receives opaque access and refresh tokens that
// the store keeps only as hashes.
//
// # Wiring (the composition root)
//
//	up, _ := authkit.New(authkit.Config{...})     // or pointed at devauthkit
//	srv, err := auth.New(auth.Config{
//		PublicURL:       cfg.Server.PublicURL,
//		CookieKey:       []byte(cfg.Auth.CookieEncryptionKey.Reveal()), // random 32 bytes in dev when empty
//		AccessTokenTTL:  cfg.Auth.AccessTokenTTL,
//		RefreshTokenTTL: cfg.Auth.RefreshTokenTTL,
//		CodeTTL:         cfg.Auth.CodeTTL,
//		ClientTTL:       cfg.Auth.ClientTTL,
//	}, st, up, logger)
//	defer srv.Close()
//	srv.Mount(mux)                                      // metadata, /register, /authorize, /callback, /token, /revoke
//	mux.Handle("/mcp", srv.Protect(auth.PathMCP, mcpHandler))
//	mux.Handle("/sse", srv.Protect(auth.PathSSE, sseHandler))
//
// The development AuthKit, when used, is mounted on the same mux at
// devauthkit.MountPath (see devauthkit's example), with
// PublicURL+"/callback" as its redirect URI.
//
// # Flow and state
//
//   - GET /authorize validates the client, the redirect URI (exact, any
//     port for loopback), response_type=code, PKCE S256, resource (default
//     PublicURL+"/mcp", another one is invalid_target) and scope. Errors
//     about the client or redirect URI are shown as a page; the rest are
//     redirected to the client with state and iss.
//   - The consent page (Approve / Deny) carries the request in a form
//     signed with a key derived from Config.CookieKey and bound to this
//     browser's id cookie (CSRF). Approval is remembered per browser and
//     client in a signed cookie (__Host- prefixed over https).
//   - After approval a store.PendingAuthorization keyed by the hash of a
//     fresh random state, bound to the browser and holding our upstream
//     PKCE verifier (encrypted), lives for Config.PendingTTL; the browser
//     goes to AuthKit.
//   - GET /callback consumes it (single use, same browser only), redeems
//     the upstream code, stores the grant with the upstream refresh token
//     AES-256-GCM encrypted (the grant id as associated data), and
//     redirects to the client with our single-use code, state and iss.
//   - POST /token redeems codes (client authentication by the registered
//     method, PKCE in constant time, replay revokes the grant) and refresh
//     tokens (upstream refresh first, serialized per grant; rotation; reuse
//     of a rotated token or an upstream invalid_grant revokes the grant).
//   - POST /revoke (RFC 7009): a refresh token ends its grant, an access
//     token only itself.
//
// # Bearer verification
//
// Protect looks tokens up by hash in a bounded in-memory cache in front of
// the store (entries live at most Config.CacheTTL and never past the
// token's expiry), dropped on revocation here and, when the store is a
// store.Watcher, on changes announced by the store. While the store says
// it may miss announcements (store.ChangeSuspended, a shared store whose
// notification connection dropped) the cache is emptied and bypassed
// until the next store.ChangeUnknown. The verified [Caller]
// is in the request context ([CallerFromContext]), and also as a go-sdk
// auth.TokenInfo for packages that only import the go-sdk.
//
// # WorkOS webhooks
//
// [Server.WebhookHandler] serves [PathWorkOSWebhook]: WorkOS events that end
// a session, delete a user or change a membership, role or permission end
// the grants concerned or mark them stale (their access tokens are refused
// and the next refresh re-reads the identity), and drop their cached tokens
// before answering, so the next request is refused. Deliveries are checked
// by a [WebhookVerifier] (*authkit.WebhookVerifier).
//
// # Resource-server mode
//
// With auth.mode = "authkit", [NewResourceServer] replaces Server: its
// metadata names the AuthKit domain as the authorization server and its
// Protect verifies AuthKit JWTs (audience = our MCP URL) with a
// [JWTVerifier] (*authkit.Upstream configured for the AuthKit domain).
//
// Operator control of a running server lives in the admin subpackage.
//
// Nothing here logs tokens, codes, secrets, states or cookie values.
package auth
