package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// Token endpoint authentication methods and grant types we support.
const (
	authNone      = "none"
	authBasic     = "client_secret_basic"
	authPost      = "client_secret_post"
	grantAuthCode = "authorization_code"
	grantRefresh  = "refresh_token"
)

// registration is an RFC 7591 §2 client metadata document as we read it.
// Fields we do not use (contacts, tos_uri, jwks, software_statement, ...)
// are accepted and ignored.
type registration struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod *string  `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	Scope                   string   `json:"scope"`
	SoftwareID              string   `json:"software_id"`
	SoftwareVersion         string   `json:"software_version"`
	ApplicationType         string   `json:"application_type"`
}

// registrationResponse is the RFC 7591 §3.2.1 answer.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
	ApplicationType         string   `json:"application_type,omitempty"`
}

// handleRegister implements RFC 7591 dynamic client registration.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if ok, retry := s.limiter.allow(); !ok {
		e := &Error{Code: ErrCodeTooManyRequests, Description: "too many registrations; try again later", Status: http.StatusTooManyRequests}
		e.retryAfter = retry
		writeError(w, e)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, oauthErr(ErrCodeInvalidClientMetadata, "the request body must be application/json"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegisterBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, &Error{Code: ErrCodeInvalidClientMetadata, Description: "the registration request is larger than 16 KiB", Status: http.StatusRequestEntityTooLarge})
			return
		}
		writeError(w, oauthErr(ErrCodeInvalidClientMetadata, "cannot read the request body"))
		return
	}
	reg, e := parseRegistration(body, s.cfg.Scopes)
	if e != nil {
		writeError(w, e)
		return
	}
	c, secret := s.newClient(reg, body)
	if err := s.st.CreateClient(r.Context(), c); err != nil {
		s.log.ErrorContext(r.Context(), "auth: store client", "err", err)
		writeError(w, &Error{Code: ErrCodeServerError, Description: "cannot store the registration", Status: http.StatusInternalServerError})
		return
	}
	s.log.InfoContext(r.Context(), "auth: client registered", "client_id", c.ID, "client_name", c.Name, "auth_method", c.TokenEndpointAuthMethod)
	writeJSON(w, http.StatusCreated, registrationResponseFor(c, secret))
}

// parseRegistration decodes and validates a registration request, applying
// the RFC 7591 §2 defaults.
func parseRegistration(body []byte, supportedScopes []string) (registration, *Error) {
	var reg registration
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&reg); err != nil {
		return reg, oauthErr(ErrCodeInvalidClientMetadata, "the request body is not a JSON object of client metadata")
	}
	if _, err := dec.Token(); err != io.EOF {
		return reg, oauthErr(ErrCodeInvalidClientMetadata, "trailing data after the JSON object")
	}
	if len(reg.RedirectURIs) == 0 {
		return reg, oauthErr(ErrCodeInvalidRedirectURI, "redirect_uris is required")
	}
	if len(reg.RedirectURIs) > MaxRedirectURIs {
		return reg, oauthErr(ErrCodeInvalidRedirectURI, "at most 10 redirect_uris are allowed")
	}
	for _, u := range reg.RedirectURIs {
		if _, problem := checkRedirectURI(u); problem != "" {
			return reg, oauthErr(ErrCodeInvalidRedirectURI, problem)
		}
	}
	method := authBasic // RFC 7591 §2 default
	if reg.TokenEndpointAuthMethod != nil {
		method = *reg.TokenEndpointAuthMethod
	}
	if !slices.Contains(authMethods, method) {
		return reg, oauthErr(ErrCodeInvalidClientMetadata, "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
	}
	reg.TokenEndpointAuthMethod = &method
	if reg.GrantTypes == nil {
		reg.GrantTypes = []string{grantAuthCode}
	}
	if reg.ResponseTypes == nil {
		reg.ResponseTypes = []string{"code"}
	}
	for _, g := range reg.GrantTypes {
		if !slices.Contains(grantTypes, g) {
			return reg, oauthErr(ErrCodeInvalidClientMetadata, "grant_types may only hold authorization_code and refresh_token")
		}
	}
	if !slices.Contains(reg.GrantTypes, grantAuthCode) {
		return reg, oauthErr(ErrCodeInvalidClientMetadata, "grant_types must include authorization_code")
	}
	if len(reg.ResponseTypes) != 1 || reg.ResponseTypes[0] != "code" {
		return reg, oauthErr(ErrCodeInvalidClientMetadata, `response_types must be ["code"]`)
	}
	reg.GrantTypes = compact(reg.GrantTypes)
	if reg.Scope != "" {
		for _, sc := range strings.Split(reg.Scope, " ") {
			if !slices.Contains(supportedScopes, sc) {
				return reg, oauthErr(ErrCodeInvalidClientMetadata, "scope holds an unsupported scope")
			}
		}
	}
	switch reg.ApplicationType {
	case "", "native", "web":
	default:
		return reg, oauthErr(ErrCodeInvalidClientMetadata, "application_type must be native or web")
	}
	if len(reg.ClientName) > maxClientNameLen || !printable(reg.ClientName) {
		return reg, oauthErr(ErrCodeInvalidClientMetadata, "client_name must be at most 200 printable characters")
	}
	if len(reg.SoftwareID) > maxSoftwareFieldLen || len(reg.SoftwareVersion) > maxSoftwareFieldLen ||
		!printable(reg.SoftwareID) || !printable(reg.SoftwareVersion) {
		return reg, oauthErr(ErrCodeInvalidClientMetadata, "software_id and software_version must be at most 200 printable characters")
	}
	for name, v := range map[string]string{"client_uri": reg.ClientURI, "logo_uri": reg.LogoURI} {
		if v != "" && !webURL(v) {
			return reg, oauthErr(ErrCodeInvalidClientMetadata, name+" must be an absolute http(s) URL of at most 2048 bytes")
		}
	}
	return reg, nil
}

// newClient builds the stored client for a validated registration and, for
// a confidential client, its secret (returned once, stored as a hash).
func (s *Server) newClient(reg registration, body []byte) (store.Client, string) {
	now := s.cfg.Now().UTC()
	c := store.Client{
		ID:                      store.NewID(),
		Name:                    reg.ClientName,
		URI:                     reg.ClientURI,
		LogoURI:                 reg.LogoURI,
		RedirectURIs:            reg.RedirectURIs,
		GrantTypes:              reg.GrantTypes,
		ResponseTypes:           reg.ResponseTypes,
		TokenEndpointAuthMethod: *reg.TokenEndpointAuthMethod,
		Scope:                   reg.Scope,
		SoftwareID:              reg.SoftwareID,
		SoftwareVersion:         reg.SoftwareVersion,
		Metadata:                body,
		CreatedAt:               now,
		LastUsedAt:              now,
		ExpiresAt:               now.Add(s.cfg.ClientTTL),
	}
	var secret string
	if c.TokenEndpointAuthMethod != authNone {
		secret = store.NewSecret()
		c.SecretHash = store.HashSecret(secret)
	}
	return c, secret
}

func registrationResponseFor(c store.Client, secret string) registrationResponse {
	var appType string
	var meta struct {
		ApplicationType string `json:"application_type"`
	}
	if json.Unmarshal(c.Metadata, &meta) == nil {
		appType = meta.ApplicationType
	}
	resp := registrationResponse{
		ClientID:                c.ID,
		ClientIDIssuedAt:        c.CreatedAt.Unix(),
		RedirectURIs:            c.RedirectURIs,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		GrantTypes:              c.GrantTypes,
		ResponseTypes:           c.ResponseTypes,
		ClientName:              c.Name,
		ClientURI:               c.URI,
		LogoURI:                 c.LogoURI,
		Scope:                   c.Scope,
		SoftwareID:              c.SoftwareID,
		SoftwareVersion:         c.SoftwareVersion,
		ApplicationType:         appType,
	}
	if secret != "" {
		var never int64
		resp.ClientSecret = secret
		resp.ClientSecretExpiresAt = &never
	}
	return resp
}

// touchClient records that a client was used, pushing back the expiry of an
// unused registration. It writes at most once per tenth of ClientTTL (and
// at least once an hour) per client.
func (s *Server) touchClient(ctx context.Context, c store.Client) {
	now := s.cfg.Now().UTC()
	if now.Sub(c.LastUsedAt) < min(time.Hour, s.cfg.ClientTTL/10) {
		return
	}
	_, err := s.st.UpdateClient(ctx, c.ID, func(c *store.Client) error {
		c.LastUsedAt = now
		c.ExpiresAt = now.Add(s.cfg.ClientTTL)
		return nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "auth: record client use", "client_id", c.ID, "err", err)
	}
}

func compact(in []string) []string {
	out := make([]string, 0, len(in))
	for _, v := range in {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return true
}

// webURL reports whether raw is an absolute http(s) URL fit to show.
func webURL(raw string) bool {
	if len(raw) > MaxRedirectURILen {
		return false
	}
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}
