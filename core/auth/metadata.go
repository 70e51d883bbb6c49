package auth

import "net/http"

// asMetadata is our RFC 8414 authorization server metadata. It is our own
// struct rather than oauthex.AuthServerMeta, whose jwks_uri lacks
// omitempty: every field here is always set.
type asMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ScopesSupported                            []string `json:"scopes_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	// ClientIDMetadataDocumentSupported is omitted (not false) when CIMD
	// is off, so no field is ever empty.
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
}

// prMetadata is our RFC 9728 protected resource metadata.
type prMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name"`
}

var (
	authMethods = []string{authNone, authBasic, authPost}
	grantTypes  = []string{grantAuthCode, grantRefresh}
)

func (s *Server) asMetadata() asMetadata {
	reg := s.issuer + PathRegister
	if s.cfg.DisableRegistration {
		reg = ""
	}
	return asMetadata{
		Issuer:                                     s.issuer,
		AuthorizationEndpoint:                      s.issuer + PathAuthorize,
		TokenEndpoint:                              s.issuer + PathToken,
		RegistrationEndpoint:                       reg,
		RevocationEndpoint:                         s.issuer + PathRevoke,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        grantTypes,
		TokenEndpointAuthMethodsSupported:          authMethods,
		RevocationEndpointAuthMethodsSupported:     authMethods,
		CodeChallengeMethodsSupported:              []string{"S256"},
		ScopesSupported:                            s.cfg.Scopes,
		AuthorizationResponseIssParameterSupported: true,
		ClientIDMetadataDocumentSupported:          s.cimd != nil,
	}
}

// handleASMetadata serves RFC 8414 metadata.
func (s *Server) handleASMetadata(w http.ResponseWriter, r *http.Request) {
	writeMetadata(w, r, s.asMetadata())
}

// handlePRMetadata serves RFC 9728 metadata for resource: the origin at the
// root well-known path and PublicURL+"/mcp" or "/sse" at the path-inserted
// ones, so the resource always equals what a client derives from the URL it
// fetched (RFC 9728 §3.3).
func (s *Server) handlePRMetadata(w http.ResponseWriter, r *http.Request, resource string) {
	writeMetadata(w, r, prMetadata{
		Resource:               resource,
		AuthorizationServers:   []string{s.issuer},
		ScopesSupported:        s.cfg.Scopes,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           s.cfg.ResourceName,
	})
}

// writeMetadata writes a metadata document as application/json (the
// go-sdk client refuses any other media type).
func writeMetadata(w http.ResponseWriter, _ *http.Request, v any) {
	writeJSON(w, http.StatusOK, v)
}
