// Package authkit signs users in through WorkOS AuthKit, the upstream
// identity provider behind toolgate's own OAuth authorization server.
//
// It is the only package in toolgate where WorkOS types appear. An [Upstream]
// drives the real workos-go user-management client:
//
//   - [Upstream.AuthorizationURL] builds the hosted-login URL (provider
//     "authkit", PKCE S256, caller-supplied single-use state);
//   - [Upstream.ExchangeCode] redeems the callback code with the PKCE verifier
//     and verifies the returned access token;
//   - [Upstream.Refresh] rotates the upstream refresh token so permission
//     changes and revoked sessions take effect;
//   - [Upstream.RevokeSession] ends the AuthKit session;
//   - [Upstream.VerifyAccessToken] verifies an AuthKit JWT for
//     resource-server mode;
//   - [Upstream.Permissions] looks up a user's role and permissions in an
//     organization, for resource-server tokens that carry none;
//   - [WebhookVerifier.VerifyWebhook] checks a WorkOS webhook delivery's
//     WorkOS-Signature with workos-go's webhooks client and decodes the
//     event.
//
// # Token verification
//
// Access tokens are verified with a small standard-library JWT verifier: only
// RS256 is accepted, keys come from the JWKS at
// {APIBaseURL}/sso/jwks/{client_id} (overridable), and the issuer, expiry,
// not-before and (optionally) audience are checked with a 30 second leeway.
// The key set is cached for an hour and refetched when a token names an
// unknown key id, at most once per [MinJWKSRefetchInterval], so a flood of
// tokens with made-up key ids cannot hammer WorkOS.
//
// # Permissions from organization membership
//
// [Upstream.Permissions] reads the role slug of the user's active
// organization membership (workos-go's ListOrganizationMemberships) and that
// role's permissions from GET /organizations/{id}/roles. workos-go v4.46.1
// decodes that endpoint's roles without their permissions, so authkit makes
// this one request itself, with the same HTTP client and API key, a 1 MiB
// response cap and a strict decoder: a role without a slug, a slug listed
// twice or an empty permission name reject the whole answer. A user with no
// active membership gets [ErrNoMembership]. Results are cached per (user,
// organization) for Config.PermissionsCacheTTL (default
// [DefaultPermissionsCacheTTL]) in a least-recently-used cache of
// Config.PermissionsCacheSize entries; errors, including ErrNoMembership, are
// not cached. Concurrent misses for the same pair share one lookup, which
// runs detached from the caller's cancellation under its own 10 second
// deadline, so one impatient caller cannot fail the others.
//
// # Errors
//
// Upstream failures wrap one of two sentinels: [ErrUpstreamGrantInvalid] when
// WorkOS answers invalid_grant (a revoked session, a used or unknown refresh
// token or code: the caller should end its grant), and
// [ErrUpstreamUnavailable] for network failures, timeouts and 5xx/429
// answers (the caller may retry later). Other rejections are returned as an
// [*UpstreamError] naming the HTTP status and WorkOS error code. Error values
// and log lines never contain tokens, codes or secrets. When WorkOS accepted
// a refresh but a later check failed, Refresh still returns the rotated
// refresh token alongside the error (see [Upstream.Refresh]).
package authkit
