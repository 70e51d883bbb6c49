package auth

import (
	"net/url"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Checklist 58: no token, code, secret, state or cookie value appears in
// any log line (ours, the upstream client's or the development AuthKit's)
// during full flows, including the failure paths that log warnings.
func TestNoSecretsInLogs(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	var secrets []string
	keep := func(s ...string) {
		for _, v := range s {
			if v != "" {
				secrets = append(secrets, v)
			}
		}
	}

	// A confidential client, with the upstream leg captured.
	conf := e.register(`{"redirect_uris":["` + testRedirect + `"],"grant_types":["authorization_code","refresh_token"],"client_name":"Logged"}`)
	keep(conf.ClientSecret)
	b := newBrowser(t, "alice@example.com")
	b.stopAt = e.base + PathCallback
	v, ch := pkce()
	cb, _, err := b.walk(e.authorizeURL(conf.ClientID, ch, nil))
	if err != nil || cb == nil {
		t.Fatalf("walk to callback: %v", err)
	}
	keep(cb.Query().Get("state"), cb.Query().Get("code"), v, ch)
	b.stopAt = testRedirect
	loc, _, err := b.walk(cb.String())
	if err != nil || loc == nil {
		t.Fatalf("callback: %v", err)
	}
	code := loc.Query().Get("code")
	keep(code)
	st, tk := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {v}}, basicAuth(conf.ClientID, conf.ClientSecret))
	if st != 200 {
		t.Fatalf("exchange: %d %+v", st, tk)
	}
	keep(tk.AccessToken, tk.RefreshToken)
	e.callMCP(tk.AccessToken)
	st, tk2 := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.RefreshToken}}, basicAuth(conf.ClientID, conf.ClientSecret))
	if st != 200 {
		t.Fatalf("refresh: %d", st)
	}
	keep(tk2.AccessToken, tk2.RefreshToken)
	// Failure paths: replayed callback, replayed code, reused refresh
	// token, wrong secret, revocation.
	b.walk(cb.String())
	e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {v}}, basicAuth(conf.ClientID, conf.ClientSecret))
	e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.RefreshToken}}, basicAuth(conf.ClientID, conf.ClientSecret))
	e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.RefreshToken}}, basicAuth(conf.ClientID, "wrong-secret-value-123"))
	e.postForm(PathRevoke, url.Values{"token": {tk2.AccessToken}}, basicAuth(conf.ClientID, conf.ClientSecret))
	e.callMCP(tk2.AccessToken)

	// The go-sdk client's flow.
	pb := newBrowser(t, "bob@example.com")
	access := sdkFlow(t, e, pb, &oauthex.ClientRegistrationMetadata{RedirectURIs: []string{testRedirect}, TokenEndpointAuthMethod: "none", GrantTypes: []string{"authorization_code", "refresh_token"}})
	keep(access)

	for _, br := range []*browser{b, pb} {
		u, _ := url.Parse(e.base)
		for _, c := range br.jar.Cookies(u) {
			keep(c.Value)
		}
	}
	keep(e.dev.APIKey())

	logs := e.logs.String()
	if !strings.Contains(logs, "auth: user signed in") || !strings.Contains(logs, "replayed") {
		t.Fatalf("the flow did not log what it should; logs:\n%s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a secret (%d bytes, starting %q) appears in the logs", len(s), s[:4])
		}
	}
	if strings.Contains(logs, "eyJ") {
		t.Error("a JWT appears in the logs")
	}
}
