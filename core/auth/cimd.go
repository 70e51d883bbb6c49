package auth

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// Client ID Metadata Document limits (draft-ietf-oauth-client-id-metadata-document).
const (
	MaxCIMDURLLen   = 1024
	MaxCIMDBytes    = 5 << 10
	CIMDTimeout     = 5 * time.Second
	cimdMinCacheTTL = 5 * time.Minute
	cimdMaxCacheTTL = 24 * time.Hour
	cimdDefaultTTL  = time.Hour
	cimdCacheSize   = 1000
)

// errCIMD marks a client metadata document that cannot be used; its text
// is safe to show the user.
var errCIMD = errors.New("client metadata document")

// isCIMDClientID reports whether a client_id names a metadata document.
func isCIMDClientID(id string) bool { return strings.HasPrefix(id, "https://") }

// checkCIMDURL validates the shape of a client-id URL: https, a host, a
// path other than "/", no user info, query, fragment or dot segments.
func checkCIMDURL(raw string) error {
	if len(raw) > MaxCIMDURLLen {
		return fmt.Errorf("%w: client_id URL is longer than %d bytes", errCIMD, MaxCIMDURLLen)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%w: client_id URL does not parse", errCIMD)
	case u.Scheme != "https" || u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%w: client_id URL must be https with a host", errCIMD)
	case u.User != nil:
		return fmt.Errorf("%w: client_id URL must not have user info", errCIMD)
	case u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "#"):
		return fmt.Errorf("%w: client_id URL must not have a query or fragment", errCIMD)
	case u.Path == "" || u.Path == "/":
		return fmt.Errorf("%w: client_id URL must have a path", errCIMD)
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if seg == "." || seg == ".." || strings.EqualFold(seg, "%2e") || strings.EqualFold(seg, "%2e%2e") {
			return fmt.Errorf("%w: client_id URL must not have dot segments", errCIMD)
		}
	}
	return nil
}

// cimdDocument is the part of a client metadata document we read.
type cimdDocument struct {
	ClientID                string          `json:"client_id"`
	ClientName              string          `json:"client_name"`
	ClientURI               string          `json:"client_uri"`
	LogoURI                 string          `json:"logo_uri"`
	RedirectURIs            []string        `json:"redirect_uris"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	Scope                   string          `json:"scope"`
	ClientSecret            json.RawMessage `json:"client_secret"`
	ClientSecretExpiresAt   json.RawMessage `json:"client_secret_expires_at"`
	JWKS                    json.RawMessage `json:"jwks"`
	JWKSURI                 json.RawMessage `json:"jwks_uri"`
}

// parseCIMD validates a metadata document fetched from clientID and turns
// it into a client record (public, no secret).
func parseCIMD(clientID string, body []byte, supportedScopes []string) (store.Client, error) {
	var doc cimdDocument
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return store.Client{}, fmt.Errorf("%w: not a JSON object", errCIMD)
	}
	if _, err := dec.Token(); err != io.EOF {
		return store.Client{}, fmt.Errorf("%w: trailing data after the JSON object", errCIMD)
	}
	switch {
	case doc.ClientID != clientID:
		return store.Client{}, fmt.Errorf("%w: its client_id is not the URL it was fetched from", errCIMD)
	case doc.ClientName == "" || len(doc.ClientName) > maxClientNameLen || !printable(doc.ClientName):
		return store.Client{}, fmt.Errorf("%w: client_name is required (at most 200 printable characters)", errCIMD)
	case doc.ClientSecret != nil || doc.ClientSecretExpiresAt != nil:
		return store.Client{}, fmt.Errorf("%w: it must not hold a client_secret", errCIMD)
	case doc.TokenEndpointAuthMethod != "" && doc.TokenEndpointAuthMethod != authNone:
		return store.Client{}, fmt.Errorf("%w: token_endpoint_auth_method must be none", errCIMD)
	case doc.JWKS != nil || doc.JWKSURI != nil:
		return store.Client{}, fmt.Errorf("%w: key-based client authentication is not supported", errCIMD)
	}
	// The rest follows the registration rules.
	reg := registration{
		RedirectURIs: doc.RedirectURIs, GrantTypes: doc.GrantTypes, ResponseTypes: doc.ResponseTypes,
		ClientName: doc.ClientName, ClientURI: doc.ClientURI, LogoURI: doc.LogoURI, Scope: doc.Scope,
	}
	none := authNone
	reg.TokenEndpointAuthMethod = &none
	regBody, _ := json.Marshal(reg)
	reg, e := parseRegistration(regBody, supportedScopes)
	if e != nil {
		return store.Client{}, fmt.Errorf("%w: %s", errCIMD, e.Description)
	}
	return store.Client{
		ID:                      clientID,
		Name:                    reg.ClientName,
		URI:                     reg.ClientURI,
		LogoURI:                 reg.LogoURI,
		RedirectURIs:            reg.RedirectURIs,
		GrantTypes:              reg.GrantTypes,
		ResponseTypes:           reg.ResponseTypes,
		TokenEndpointAuthMethod: authNone,
		Scope:                   reg.Scope,
		Metadata:                body,
	}, nil
}

// cimdFetcher fetches and caches client metadata documents with SSRF
// protection: every connection's address is checked at dial time against
// the special-use ranges of RFC 6890 (so DNS rebinding cannot slip past),
// redirects are not followed, keep-alives are off, reads are capped at
// MaxCIMDBytes and CIMDTimeout. Only valid documents are cached.
type cimdFetcher struct {
	client          *http.Client
	supportedScopes []string
	now             func() time.Time

	mu    sync.Mutex
	cache map[string]cimdCached
}

type cimdCached struct {
	client store.Client
	until  time.Time
}

// newCIMDFetcher returns a fetcher. allowLoopback permits loopback
// addresses (development on loopback only); tlsConfig, when not nil,
// replaces the default TLS configuration (tests).
func newCIMDFetcher(scopes []string, now func() time.Time, allowLoopback bool, tlsConfig *tls.Config) *cimdFetcher {
	dialer := &net.Dialer{
		Timeout: CIMDTimeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return fmt.Errorf("%w: bad address", errCIMD)
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("%w: bad address", errCIMD)
			}
			if specialUse(ip) && !(allowLoopback && ip.Unmap().IsLoopback()) {
				return fmt.Errorf("%w: its host resolves to a special-use address", errCIMD)
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    CIMDTimeout,
		ResponseHeaderTimeout:  CIMDTimeout,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	return &cimdFetcher{
		client: &http.Client{
			Transport:     transport,
			Timeout:       CIMDTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		supportedScopes: scopes,
		now:             now,
		cache:           make(map[string]cimdCached),
	}
}

// get returns the client described by the document at clientID, from the
// cache or fetched. Errors wrap errCIMD when the document is at fault.
func (f *cimdFetcher) get(ctx context.Context, clientID string) (store.Client, error) {
	if err := checkCIMDURL(clientID); err != nil {
		return store.Client{}, err
	}
	now := f.now()
	f.mu.Lock()
	if c, ok := f.cache[clientID]; ok && now.Before(c.until) {
		f.mu.Unlock()
		return c.client, nil
	}
	f.mu.Unlock()

	c, ttl, err := f.fetch(ctx, clientID)
	if err != nil {
		return store.Client{}, err
	}
	if ttl > 0 {
		f.mu.Lock()
		if len(f.cache) >= cimdCacheSize {
			for k, v := range f.cache {
				if !now.Before(v.until) {
					delete(f.cache, k)
				}
			}
			for k := range f.cache {
				if len(f.cache) < cimdCacheSize*9/10 {
					break
				}
				delete(f.cache, k)
			}
		}
		f.cache[clientID] = cimdCached{client: c, until: now.Add(ttl)}
		f.mu.Unlock()
	}
	return c, nil
}

func (f *cimdFetcher) fetch(ctx context.Context, clientID string) (store.Client, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, CIMDTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	if err != nil {
		return store.Client{}, 0, fmt.Errorf("%w: client_id URL does not parse", errCIMD)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, errCIMD) {
			return store.Client{}, 0, fmt.Errorf("%w: its host resolves to a special-use address", errCIMD)
		}
		return store.Client{}, 0, fmt.Errorf("%w: cannot be fetched", errCIMD)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return store.Client{}, 0, fmt.Errorf("%w: fetching it answered %d (redirects are not followed)", errCIMD, resp.StatusCode)
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return store.Client{}, 0, fmt.Errorf("%w: it is not served as application/json", errCIMD)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxCIMDBytes+1))
	if err != nil {
		return store.Client{}, 0, fmt.Errorf("%w: cannot be read", errCIMD)
	}
	if len(body) > MaxCIMDBytes {
		return store.Client{}, 0, fmt.Errorf("%w: it is larger than %d bytes", errCIMD, MaxCIMDBytes)
	}
	c, err := parseCIMD(clientID, body, f.supportedScopes)
	if err != nil {
		return store.Client{}, 0, err
	}
	return c, cacheTTL(resp.Header.Get("Cache-Control")), nil
}

// cacheTTL reads max-age from Cache-Control, clamped to our bounds; no-store
// and no-cache mean "do not cache".
func cacheTTL(cc string) time.Duration {
	ttl := cimdDefaultTTL
	for _, d := range strings.Split(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "no-store" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.Atoi(strings.TrimPrefix(d, "max-age=")); err == nil && n >= 0 {
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	return min(max(ttl, cimdMinCacheTTL), cimdMaxCacheTTL)
}

// specialUseRanges are the special-purpose ranges of RFC 6890 (and its
// updates) that a client metadata fetch must never reach.
var specialUseRanges = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
		"192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
		"::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
		"2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// specialUse reports whether ip is in a special-use range (IPv4-mapped
// IPv6 addresses are judged by their IPv4 address).
func specialUse(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	ip = ip.WithZone("")
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	return slices.ContainsFunc(specialUseRanges, func(p netip.Prefix) bool { return p.Contains(ip) })
}
