package authkit

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"time"
)

const (
	// MinJWKSRefetchInterval is the shortest time between two JWKS fetches
	// triggered by tokens naming a key id the cache does not know.
	MinJWKSRefetchInterval = time.Minute
	// jwksMaxAge is how long a fetched key set is used before it is fetched
	// again on the next verification.
	jwksMaxAge = time.Hour
	// maxJWKSSize caps the JWKS response body.
	maxJWKSSize = 1 << 20
	// minRSAKeyBits is the smallest RSA modulus accepted from the JWKS.
	minRSAKeyBits = 2048
	// maxRSAKeyBits bounds verification cost.
	maxRSAKeyBits = 8192
)

// keySet is a cached, lazily refreshed JSON Web Key Set of RSA signing keys.
type keySet struct {
	url    string
	client *http.Client
	logger *slog.Logger
	now    func() time.Time

	// fetchMu serialises fetches so concurrent misses cause one request.
	fetchMu sync.Mutex

	mu        sync.Mutex
	keys      map[string]*rsa.PublicKey
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last fetch attempt, successful or not
	lastErr   error     // error of the last fetch attempt, nil on success
}

// lookup returns the key for kid, fetching the set when it is missing,
// stale, or does not contain kid (rate-limited by MinJWKSRefetchInterval).
// An empty kid is accepted only when the set holds exactly one key.
func (ks *keySet) lookup(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if key, ok, fresh := ks.cached(kid); ok && fresh {
		return key, nil
	}
	ks.fetchMu.Lock()
	defer ks.fetchMu.Unlock()

	// Another caller may have fetched while this one waited.
	key, ok, fresh := ks.cached(kid)
	if ok && fresh {
		return key, nil
	}
	ks.mu.Lock()
	mayFetch := ks.triedAt.IsZero() || ks.now().Sub(ks.triedAt) >= MinJWKSRefetchInterval
	haveKeys, lastErr := ks.keys != nil, ks.lastErr
	ks.mu.Unlock()

	if !mayFetch {
		switch {
		case ok:
			// Stale, but a fetch was tried moments ago: keep using it.
			return key, nil
		case !haveKeys:
			// No key set yet because WorkOS was unreachable: that is an
			// outage, not a bad token.
			return nil, fmt.Errorf("%w: no signing keys yet, last jwks fetch failed: %w", ErrUpstreamUnavailable, lastErr)
		default:
			return nil, fmt.Errorf("%w: unknown signing key id %q (key set refetch rate-limited)", ErrInvalidToken, kid)
		}
	}
	if err := ks.fetch(ctx); err != nil {
		if ok {
			// A stale set that still has the key beats failing every request
			// while WorkOS is unreachable.
			ks.logger.WarnContext(ctx, "authkit: jwks refresh failed, using cached keys", "error", err)
			return key, nil
		}
		return nil, err
	}
	key, ok, _ = ks.cached(kid)
	if !ok {
		if kid == "" {
			return nil, fmt.Errorf("%w: token has no key id and the key set does not hold exactly one key", ErrInvalidToken)
		}
		return nil, fmt.Errorf("%w: unknown signing key id %q", ErrInvalidToken, kid)
	}
	return key, nil
}

// cached reports the key for kid from the cache and whether the cache is
// fresh.
func (ks *keySet) cached(kid string) (key *rsa.PublicKey, ok, fresh bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.keys == nil {
		return nil, false, false
	}
	fresh = ks.now().Sub(ks.fetchedAt) < jwksMaxAge
	if kid == "" {
		if len(ks.keys) != 1 {
			return nil, false, fresh
		}
		for _, k := range ks.keys {
			return k, true, fresh
		}
	}
	key, ok = ks.keys[kid]
	return key, ok, fresh
}

// fetch downloads and replaces the key set. Callers hold fetchMu.
func (ks *keySet) fetch(ctx context.Context) error {
	ks.mu.Lock()
	ks.triedAt = ks.now()
	ks.mu.Unlock()

	keys, err := ks.download(ctx)
	ks.mu.Lock()
	ks.lastErr = err
	if err == nil {
		ks.keys = keys
		ks.fetchedAt = ks.now()
	}
	ks.mu.Unlock()
	if err != nil {
		return err
	}
	ks.logger.DebugContext(ctx, "authkit: fetched jwks", "keys", len(keys))
	return nil
}

func (ks *keySet) download(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, fmt.Errorf("build jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: fetch jwks: %w", ErrUpstreamUnavailable, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxJWKSSize))
		err := fmt.Errorf("fetch jwks: unexpected status %s", res.Status)
		if res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests {
			err = fmt.Errorf("%w: %w", ErrUpstreamUnavailable, err)
		}
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read jwks: %w", ErrUpstreamUnavailable, err)
	}
	if len(body) > maxJWKSSize {
		return nil, fmt.Errorf("jwks response exceeds %d bytes", maxJWKSSize)
	}
	return parseJWKS(body)
}

// jwk is one JSON Web Key (RFC 7517) as far as RSA signing keys need.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// parseJWKS decodes a JWKS document into RSA public keys by kid. Keys that
// are not RSA signing keys for RS256 are skipped; malformed RSA keys are an
// error. A set with no usable key is an error.
func parseJWKS(body []byte) (map[string]*rsa.PublicKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	keys := make(map[string]*rsa.PublicKey, len(doc.Keys))
	for i, k := range doc.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		pub, err := rsaKeyFromJWK(k)
		if err != nil {
			return nil, fmt.Errorf("jwks key %d (kid %q): %w", i, k.Kid, err)
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("jwks: duplicate key id %q", k.Kid)
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks holds no RS256 signing keys")
	}
	return keys, nil
}

func rsaKeyFromJWK(k jwk) (*rsa.PublicKey, error) {
	nb, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		return nil, fmt.Errorf("modulus is not base64url: %w", err)
	}
	eb, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil {
		return nil, fmt.Errorf("exponent is not base64url: %w", err)
	}
	n := new(big.Int).SetBytes(nb)
	if bits := n.BitLen(); bits < minRSAKeyBits || bits > maxRSAKeyBits {
		return nil, fmt.Errorf("modulus is %d bits, want %d to %d", bits, minRSAKeyBits, maxRSAKeyBits)
	}
	if len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("exponent out of range")
	}
	e := 0
	for _, b := range eb {
		e = e<<8 | int(b)
	}
	if e < 3 || e%2 == 0 {
		return nil, errors.New("exponent out of range")
	}
	return &rsa.PublicKey{N: n, E: e}, nil
}
