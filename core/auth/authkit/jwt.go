package authkit

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// MaxTokenSize is the largest access token, in bytes, that the verifier will
// look at. AuthKit tokens are well under 2 KiB; anything larger is refused
// before decoding.
const MaxTokenSize = 16 << 10

// clockLeeway is the clock skew tolerated when checking exp, nbf and iat.
const clockLeeway = 30 * time.Second

// ErrInvalidToken is wrapped by every token verification failure.
var ErrInvalidToken = errors.New("invalid access token")

// Claims are the verified claims of an AuthKit access token.
type Claims struct {
	// Issuer is the iss claim.
	Issuer string
	// Subject is the sub claim: the WorkOS user id (user_…).
	Subject string
	// Audience is the aud claim (a string or a list in the token).
	Audience []string
	// ExpiresAt is the exp claim.
	ExpiresAt time.Time
	// IssuedAt is the iat claim, zero if absent.
	IssuedAt time.Time
	// NotBefore is the nbf claim, zero if absent.
	NotBefore time.Time
	// ID is the jti claim.
	ID string
	// SessionID is the sid claim: the AuthKit session (session_…).
	SessionID string
	// OrganizationID is the org_id claim, empty when the user signed in
	// outside an organization.
	OrganizationID string
	// Role is the role claim: the user's role slug in OrganizationID.
	Role string
	// Roles is the roles claim, when present.
	Roles []string
	// Permissions is the permissions claim: the permission slugs of Role.
	Permissions []string
	// ClientID is the client_id claim, when present.
	ClientID string
}

// jwtHeader is the JOSE header fields the verifier reads.
type jwtHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// rawClaims is the JSON shape of the token payload.
type rawClaims struct {
	Iss         string          `json:"iss"`
	Sub         string          `json:"sub"`
	Aud         json.RawMessage `json:"aud"`
	Exp         *json.Number    `json:"exp"`
	Iat         *json.Number    `json:"iat"`
	Nbf         *json.Number    `json:"nbf"`
	Jti         string          `json:"jti"`
	Sid         string          `json:"sid"`
	OrgID       string          `json:"org_id"`
	Role        string          `json:"role"`
	Roles       []string        `json:"roles"`
	Permissions []string        `json:"permissions"`
	ClientID    string          `json:"client_id"`
}

// parsedJWT is a compact JWS split into its parts; nothing in it is trusted
// until the signature has been checked.
type parsedJWT struct {
	header       jwtHeader
	signingInput string
	payload      []byte
	signature    []byte
}

// parseJWT splits and decodes a compact JWS. It checks the shape and the
// header (RS256 only, no crit) but not the signature or the claims.
func parseJWT(token string) (*parsedJWT, error) {
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: token is %d bytes, limit %d", ErrInvalidToken, len(token), MaxTokenSize)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: want 3 dot-separated parts, got %d", ErrInvalidToken, len(parts))
	}
	headerJSON, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url: %v", ErrInvalidToken, err)
	}
	var h jwtHeader
	if err := strictUnmarshal(headerJSON, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrInvalidToken, err)
	}
	if h.Alg != "RS256" {
		return nil, fmt.Errorf("%w: algorithm %q not accepted, want RS256", ErrInvalidToken, h.Alg)
	}
	if len(h.Crit) > 0 {
		return nil, fmt.Errorf("%w: critical header parameters are not supported", ErrInvalidToken)
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url: %v", ErrInvalidToken, err)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url: %v", ErrInvalidToken, err)
	}
	return &parsedJWT{
		header:       h,
		signingInput: token[:len(parts[0])+1+len(parts[1])],
		payload:      payload,
		signature:    sig,
	}, nil
}

// verifySignature checks the RS256 signature with key.
func (p *parsedJWT) verifySignature(key *rsa.PublicKey) error {
	if len(p.signature) != key.Size() {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrInvalidToken, len(p.signature), key.Size())
	}
	digest := sha256.Sum256([]byte(p.signingInput))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], p.signature); err != nil {
		return fmt.Errorf("%w: bad signature", ErrInvalidToken)
	}
	return nil
}

// claimsPolicy is what validateClaims checks.
type claimsPolicy struct {
	issuers  []string // accepted iss values; at least one
	audience string   // required aud value, if non-empty
	now      time.Time
}

// decodeClaims decodes and validates the payload of a token whose signature
// has already been verified.
func (p *parsedJWT) decodeClaims(pol claimsPolicy) (Claims, error) {
	var rc rawClaims
	if err := strictUnmarshal(p.payload, &rc); err != nil {
		return Claims{}, fmt.Errorf("%w: payload: %v", ErrInvalidToken, err)
	}
	c := Claims{
		Issuer:         rc.Iss,
		Subject:        rc.Sub,
		ID:             rc.Jti,
		SessionID:      rc.Sid,
		OrganizationID: rc.OrgID,
		Role:           rc.Role,
		Roles:          rc.Roles,
		Permissions:    rc.Permissions,
		ClientID:       rc.ClientID,
	}
	var err error
	if c.Audience, err = decodeAudience(rc.Aud); err != nil {
		return Claims{}, err
	}
	if rc.Exp == nil {
		return Claims{}, fmt.Errorf("%w: missing exp", ErrInvalidToken)
	}
	if c.ExpiresAt, err = numericDate("exp", *rc.Exp); err != nil {
		return Claims{}, err
	}
	if rc.Iat != nil {
		if c.IssuedAt, err = numericDate("iat", *rc.Iat); err != nil {
			return Claims{}, err
		}
	}
	if rc.Nbf != nil {
		if c.NotBefore, err = numericDate("nbf", *rc.Nbf); err != nil {
			return Claims{}, err
		}
	}

	if !slices.Contains(pol.issuers, c.Issuer) {
		return Claims{}, fmt.Errorf("%w: issuer %q not accepted", ErrInvalidToken, c.Issuer)
	}
	if c.Subject == "" {
		return Claims{}, fmt.Errorf("%w: missing sub", ErrInvalidToken)
	}
	if !pol.now.Before(c.ExpiresAt.Add(clockLeeway)) {
		return Claims{}, fmt.Errorf("%w: expired at %s", ErrInvalidToken, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if !c.NotBefore.IsZero() && pol.now.Add(clockLeeway).Before(c.NotBefore) {
		return Claims{}, fmt.Errorf("%w: not valid before %s", ErrInvalidToken, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if !c.IssuedAt.IsZero() && pol.now.Add(clockLeeway).Before(c.IssuedAt) {
		return Claims{}, fmt.Errorf("%w: issued in the future (%s)", ErrInvalidToken, c.IssuedAt.UTC().Format(time.RFC3339))
	}
	if pol.audience != "" && !slices.Contains(c.Audience, pol.audience) {
		return Claims{}, fmt.Errorf("%w: audience %q not in token audience %q", ErrInvalidToken, pol.audience, c.Audience)
	}
	return c, nil
}

// decodeAudience accepts aud as a string or a list of strings (RFC 7519 §4.1.3).
func decodeAudience(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("%w: aud is neither a string nor a list of strings", ErrInvalidToken)
	}
	return many, nil
}

// numericDate converts a JSON NumericDate (seconds since the epoch, possibly
// fractional) to a time.
func numericDate(name string, n json.Number) (time.Time, error) {
	f, err := n.Float64()
	// Keep to a range where float → int64 conversion is exact enough and
	// cannot overflow: year 1970 to roughly year 33658.
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e12 {
		return time.Time{}, fmt.Errorf("%w: %s is not a valid NumericDate", ErrInvalidToken, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// strictUnmarshal decodes one JSON object, rejecting trailing data and
// numbers outside json.Number.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after JSON object")
	}
	return nil
}
