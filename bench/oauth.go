package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// redirectURI is the loopback redirect URI the harness registers; nothing
// listens there, the code is read from the redirect itself.
const redirectURI = "http://127.0.0.1:5555/callback"

// hiddenInput matches the hidden inputs of toolgate's consent page and of
// the development AuthKit's login page.
var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// signIn runs the OAuth authorization code flow against a development-mode
// toolgate at public as a browser would, for user, and returns an access
// token for the resource public+"/mcp": register a public client, authorize
// with PKCE (S256), approve the consent page, submit the development
// AuthKit's login page with the email, and redeem the code at /token.
func signIn(ctx context.Context, public, user string) (string, error) {
	clientID, err := register(ctx, public)
	if err != nil {
		return "", err
	}
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	state := rand.Text()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirectURI},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"state":                 {state},
		"resource":              {public + "/mcp"},
	}
	loc, err := walk(ctx, public+"/authorize?"+q.Encode(), user)
	if err != nil {
		return "", fmt.Errorf("authorize: %w", err)
	}
	got := loc.Query()
	if got.Get("state") != state {
		return "", fmt.Errorf("authorize: redirect state %q, want %q", got.Get("state"), state)
	}
	if got.Get("code") == "" {
		return "", fmt.Errorf("authorize: no code in the redirect (%s)", got.Get("error"))
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {got.Get("code")},
		"redirect_uri":  {redirectURI},
		"client_id":     {clientID},
		"code_verifier": {verifier},
		"resource":      {public + "/mcp"},
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := postJSON(ctx, public+"/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), &tok); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	if tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "bearer") {
		return "", fmt.Errorf("token: no bearer access token (token_type %q)", tok.TokenType)
	}
	return tok.AccessToken, nil
}

// register registers a public client (no secret) at /register and returns
// its client_id.
func register(ctx context.Context, public string) (string, error) {
	meta, err := json.Marshal(map[string]any{
		"redirect_uris":              []string{redirectURI},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"client_name":                "toolgate bench",
	})
	if err != nil {
		return "", fmt.Errorf("register: %w", err)
	}
	var out struct {
		ClientID string `json:"client_id"`
	}
	if err := postJSON(ctx, public+"/register", "application/json", strings.NewReader(string(meta)), &out); err != nil {
		return "", fmt.Errorf("register: %w", err)
	}
	if out.ClientID == "" {
		return "", fmt.Errorf("register: no client_id in the answer")
	}
	return out.ClientID, nil
}

// postJSON posts body and decodes a 200 or 201 JSON answer into out.
func postJSON(ctx context.Context, target, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, body)
	if err != nil {
		return fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// walk plays the browser from target: it follows redirects, approves the
// consent page and submits the login page with user, until a redirect to
// redirectURI, which it returns.
func walk(ctx context.Context, target, user string) (*url.URL, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("cookie jar: %w", err)
	}
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	for range 20 {
		resp, err := browser.Do(req)
		if err != nil {
			return nil, fmt.Errorf("browse: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", resp.Request.URL, err)
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, fmt.Errorf("redirect from %s: %w", resp.Request.URL, err)
			}
			if strings.HasPrefix(loc.String(), redirectURI) {
				return loc, nil
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
			if err != nil {
				return nil, fmt.Errorf("new request: %w", err)
			}
		case resp.StatusCode == http.StatusOK && strings.Contains(resp.Header.Get("Content-Type"), "text/html"):
			form := url.Values{}
			for _, m := range hiddenInput.FindAllStringSubmatch(string(body), -1) {
				form.Set(m[1], html.UnescapeString(m[2]))
			}
			switch {
			case form.Has("login_id"): // the development AuthKit's login page
				form.Set("email", user)
			case form.Has("request"): // toolgate's consent page
				form.Set("action", "approve")
			default:
				return nil, fmt.Errorf("unexpected page at %s: %.300s", resp.Request.URL, body)
			}
			u, err := resp.Request.URL.Parse("authorize")
			if err != nil {
				return nil, fmt.Errorf("form target: %w", err)
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
			if err != nil {
				return nil, fmt.Errorf("new request: %w", err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			return nil, fmt.Errorf("%s answered %d: %.300s", resp.Request.URL, resp.StatusCode, body)
		}
	}
	return nil, fmt.Errorf("no redirect to %s after 20 steps", redirectURI)
}
