package authkit

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	keysOnce sync.Once
	keyA     *rsa.PrivateKey
	keyB     *rsa.PrivateKey
)

// testKeys returns two RSA keys shared by the tests of this binary.
func testKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if keyA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keyB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return keyA, keyB
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwkJSON(kid string, pub *rsa.PublicKey) map[string]string {
	return map[string]string{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// signRS256 builds a token with the given header and claims.
func signRS256(t testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// jwksServer serves a mutable JWKS and counts fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int32
	mu      sync.Mutex
	keys    []map[string]string
}

func newJWKSServer(t *testing.T, keys ...map[string]string) *jwksServer {
	t.Helper()
	js := &jwksServer{keys: keys}
	js.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.fetches.Add(1)
		js.mu.Lock()
		defer js.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": js.keys})
	}))
	t.Cleanup(js.Close)
	return js
}

func (js *jwksServer) set(keys ...map[string]string) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.keys = keys
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const testIssuer = "https://api.workos.com/user_management/client_test"

func newTestUpstream(t *testing.T, jwksURL string, clock *testClock) *Upstream {
	t.Helper()
	up, err := New(Config{
		ClientID: "client_test", APIKey: "sk_test", JWKSURL: jwksURL,
		Logger: slog.New(slog.DiscardHandler), Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return up
}

func validClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "user_1", "sid": "session_1", "org_id": "org_1",
		"role": "admin", "permissions": []string{"image_generation"},
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "j1",
		"aud": "https://tg.example/mcp",
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestVerifyAccessToken(t *testing.T) {
	a, b := testKeys(t)
	now := time.Unix(1_800_000_000, 0)
	hdr := map[string]any{"alg": "RS256", "typ": "JWT", "kid": "ka"}
	claims := validClaims(now)
	good := signRS256(t, a, hdr, claims)
	parts := strings.Split(good, ".")

	hs256 := func() string {
		h, _ := json.Marshal(map[string]any{"alg": "HS256", "kid": "ka"})
		c, _ := json.Marshal(claims)
		input := b64(h) + "." + b64(c)
		mac := hmac.New(sha256.New, a.PublicKey.N.Bytes())
		mac.Write([]byte(input))
		return input + "." + b64(mac.Sum(nil))
	}()
	none := func() string {
		h, _ := json.Marshal(map[string]any{"alg": "none"})
		c, _ := json.Marshal(claims)
		return b64(h) + "." + b64(c) + "."
	}()

	tests := []struct {
		name     string
		token    string
		audience string
		wantErr  bool
	}{
		{name: "valid", token: good},
		{name: "valid with audience", token: good, audience: "https://tg.example/mcp"},
		{name: "wrong audience", token: good, audience: "https://other.example/mcp", wantErr: true},
		{name: "audience list", token: signRS256(t, a, hdr, with(claims, "aud", []string{"x", "https://tg.example/mcp"})), audience: "https://tg.example/mcp"},
		{name: "no aud but audience required", token: signRS256(t, a, hdr, with(claims, "aud", nil)), audience: "https://tg.example/mcp", wantErr: true},
		{name: "bad signature", token: parts[0] + "." + parts[1] + "." + b64(make([]byte, 256)), wantErr: true},
		{name: "signed by another key", token: signRS256(t, b, hdr, claims), wantErr: true},
		{name: "payload swapped", token: parts[0] + "." + b64([]byte(`{"iss":"`+testIssuer+`","sub":"user_evil","exp":9999999999}`)) + "." + parts[2], wantErr: true},
		{name: "wrong issuer", token: signRS256(t, a, hdr, with(claims, "iss", "https://evil.example")), wantErr: true},
		{name: "api base issuer", token: signRS256(t, a, hdr, with(claims, "iss", "https://api.workos.com"))},
		{name: "expired", token: signRS256(t, a, hdr, with(claims, "exp", now.Add(-time.Minute).Unix())), wantErr: true},
		{name: "expired within leeway", token: signRS256(t, a, hdr, with(claims, "exp", now.Add(-10*time.Second).Unix()))},
		{name: "missing exp", token: signRS256(t, a, hdr, with(claims, "exp", nil)), wantErr: true},
		{name: "exp not a number", token: signRS256(t, a, hdr, with(claims, "exp", "soon")), wantErr: true},
		{name: "not yet valid", token: signRS256(t, a, hdr, with(claims, "nbf", now.Add(time.Hour).Unix())), wantErr: true},
		{name: "issued in the future", token: signRS256(t, a, hdr, with(claims, "iat", now.Add(time.Hour).Unix())), wantErr: true},
		{name: "missing sub", token: signRS256(t, a, hdr, with(claims, "sub", nil)), wantErr: true},
		{name: "alg none", token: none, wantErr: true},
		{name: "HS256 with public key as secret", token: hs256, wantErr: true},
		{name: "RS512", token: signRS256(t, a, map[string]any{"alg": "RS512", "kid": "ka"}, claims), wantErr: true},
		{name: "crit header", token: signRS256(t, a, map[string]any{"alg": "RS256", "kid": "ka", "crit": []string{"exp"}}, claims), wantErr: true},
		{name: "two parts", token: parts[0] + "." + parts[1], wantErr: true},
		{name: "four parts", token: good + ".x", wantErr: true},
		{name: "empty", token: "", wantErr: true},
		{name: "header not base64", token: "!!." + parts[1] + "." + parts[2], wantErr: true},
		{name: "header padded base64", token: base64.URLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"ka"}`)) + "." + parts[1] + "." + parts[2], wantErr: true},
		{name: "header not json", token: b64([]byte("nope")) + "." + parts[1] + "." + parts[2], wantErr: true},
		{name: "payload not json", token: signRS256Raw(t, a, `{"alg":"RS256","kid":"ka"}`, "nope"), wantErr: true},
		{name: "payload trailing data", token: signRS256Raw(t, a, `{"alg":"RS256","kid":"ka"}`, `{"iss":"`+testIssuer+`","sub":"u","exp":1900000000} ]`), wantErr: true},
		{name: "signature not base64", token: parts[0] + "." + parts[1] + ".***", wantErr: true},
		{name: "oversize", token: signRS256(t, a, hdr, with(claims, "pad", strings.Repeat("x", MaxTokenSize))), wantErr: true},
	}

	js := newJWKSServer(t, jwkJSON("ka", &a.PublicKey))
	clock := &testClock{t: now}
	up := newTestUpstream(t, js.URL, clock)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := up.VerifyAccessToken(t.Context(), tc.token, tc.audience)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("VerifyAccessToken succeeded with claims %+v, want an error", c)
				}
				if !errors.Is(err, ErrInvalidToken) {
					t.Errorf("error %v does not wrap ErrInvalidToken", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyAccessToken: %v", err)
			}
			if c.Subject != "user_1" || c.SessionID != "session_1" || c.OrganizationID != "org_1" || c.Role != "admin" ||
				len(c.Permissions) != 1 || c.Permissions[0] != "image_generation" || c.ID != "j1" {
				t.Errorf("claims = %+v", c)
			}
		})
	}
	if n := js.fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times for one known key, want 1", n)
	}
}

// signRS256Raw signs raw header and payload strings.
func signRS256Raw(t testing.TB, key *rsa.PrivateKey, header, payload string) string {
	t.Helper()
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

func TestUnknownKeyIDRefetchIsRateLimited(t *testing.T) {
	a, b := testKeys(t)
	now := time.Unix(1_800_000_000, 0)
	clock := &testClock{t: now}
	js := newJWKSServer(t, jwkJSON("ka", &a.PublicKey))
	up := newTestUpstream(t, js.URL, clock)
	ctx := t.Context()

	tokA := signRS256(t, a, map[string]any{"alg": "RS256", "kid": "ka"}, validClaims(now))
	if _, err := up.VerifyAccessToken(ctx, tokA, ""); err != nil {
		t.Fatalf("known key: %v", err)
	}
	// The first fetch was moments ago, so an unknown kid does not trigger
	// another one: the refetch is rate-limited.
	tokB := signRS256(t, b, map[string]any{"alg": "RS256", "kid": "kb"}, validClaims(now))
	if _, err := up.VerifyAccessToken(ctx, tokB, ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("unknown kid error = %v, want ErrInvalidToken", err)
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d after a rate-limited miss, want 1", n)
	}

	// After the interval, a miss refetches once; a flood of misses does not.
	clock.Advance(MinJWKSRefetchInterval)
	for i := range 20 {
		tok := signRS256(t, b, map[string]any{"alg": "RS256", "kid": "unknown" + string(rune('a'+i))}, validClaims(now))
		if _, err := up.VerifyAccessToken(ctx, tok, ""); err == nil {
			t.Fatal("token with unknown kid verified")
		}
	}
	if n := js.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d after a flood of unknown kids, want 2", n)
	}

	// Key rotation: the new key appears in the JWKS and is picked up on the
	// next allowed refetch.
	js.set(jwkJSON("ka", &a.PublicKey), jwkJSON("kb", &b.PublicKey))
	clock.Advance(MinJWKSRefetchInterval)
	if _, err := up.VerifyAccessToken(ctx, tokB, ""); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := js.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
}

func TestMissingKeyID(t *testing.T) {
	a, b := testKeys(t)
	now := time.Unix(1_800_000_000, 0)
	noKid := signRS256(t, a, map[string]any{"alg": "RS256"}, validClaims(now))

	one := newJWKSServer(t, jwkJSON("ka", &a.PublicKey))
	if _, err := newTestUpstream(t, one.URL, &testClock{t: now}).VerifyAccessToken(t.Context(), noKid, ""); err != nil {
		t.Errorf("no kid with a single key: %v", err)
	}
	two := newJWKSServer(t, jwkJSON("ka", &a.PublicKey), jwkJSON("kb", &b.PublicKey))
	if _, err := newTestUpstream(t, two.URL, &testClock{t: now}).VerifyAccessToken(t.Context(), noKid, ""); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("no kid with two keys: error %v, want ErrInvalidToken", err)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	a, _ := testKeys(t)
	now := time.Unix(1_800_000_000, 0)
	var fail atomic.Bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{jwkJSON("ka", &a.PublicKey)}})
	}))
	defer ts.Close()
	clock := &testClock{t: now}
	up := newTestUpstream(t, ts.URL, clock)
	tok := func() string {
		return signRS256(t, a, map[string]any{"alg": "RS256", "kid": "ka"}, validClaims(clock.Now()))
	}

	fail.Store(true)
	if _, err := up.VerifyAccessToken(t.Context(), tok(), ""); !errors.Is(err, ErrUpstreamUnavailable) {
		t.Fatalf("first fetch failing: error %v, want ErrUpstreamUnavailable", err)
	}
	// Within the refetch interval there is no new fetch, and the outage is
	// still reported as one, not as a bad token.
	if _, err := up.VerifyAccessToken(t.Context(), tok(), ""); !errors.Is(err, ErrUpstreamUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("rate-limited retry during the outage: error %v, want ErrUpstreamUnavailable", err)
	}
	fail.Store(false)
	clock.Advance(MinJWKSRefetchInterval)
	if _, err := up.VerifyAccessToken(t.Context(), tok(), ""); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	// Stale cache and WorkOS down: keep verifying with the cached key.
	fail.Store(true)
	clock.Advance(2 * jwksMaxAge)
	if _, err := up.VerifyAccessToken(t.Context(), tok(), ""); err != nil {
		t.Fatalf("stale cache while jwks is down: %v", err)
	}
}

func TestParseJWKS(t *testing.T) {
	a, _ := testKeys(t)
	good := jwkJSON("ka", &a.PublicKey)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(keys ...any) []byte { b, _ := json.Marshal(map[string]any{"keys": keys}); return b }
	tests := []struct {
		name    string
		body    []byte
		want    int
		wantErr bool
	}{
		{name: "one key", body: enc(good), want: 1},
		{name: "skips non-RSA and enc keys", body: enc(good, map[string]string{"kty": "EC", "kid": "x"}, with2(good, "use", "enc", "kid", "e1")), want: 1},
		{name: "no usable keys", body: enc(map[string]string{"kty": "EC"}), wantErr: true},
		{name: "empty", body: []byte(`{"keys":[]}`), wantErr: true},
		{name: "not json", body: []byte("<html>"), wantErr: true},
		{name: "small modulus", body: enc(jwkJSON("s", &small.PublicKey)), wantErr: true},
		{name: "even exponent", body: enc(with2(good, "e", b64([]byte{4}))), wantErr: true},
		{name: "huge exponent", body: enc(with2(good, "e", b64([]byte{1, 0, 0, 0, 1}))), wantErr: true},
		{name: "bad modulus encoding", body: enc(with2(good, "n", "***")), wantErr: true},
		{name: "duplicate kid", body: enc(good, good), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parseJWKS(tc.body)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parseJWKS succeeded with %d keys, want an error", len(keys))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != tc.want {
				t.Errorf("%d keys, want %d", len(keys), tc.want)
			}
		})
	}
}

func with2(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestConcurrentColdCache hammers a cold key cache: every verification
// succeeds and the JWKS is fetched once.
func TestConcurrentColdCache(t *testing.T) {
	a, _ := testKeys(t)
	now := time.Unix(1_800_000_000, 0)
	js := newJWKSServer(t, jwkJSON("ka", &a.PublicKey))
	up := newTestUpstream(t, js.URL, &testClock{t: now})
	tok := signRS256(t, a, map[string]any{"alg": "RS256", "kid": "ka"}, validClaims(now))

	const workers = 32
	errs := make(chan error, workers)
	var start sync.WaitGroup
	start.Add(1)
	for range workers {
		go func() {
			start.Wait()
			_, err := up.VerifyAccessToken(t.Context(), tok, "")
			errs <- err
		}()
	}
	start.Done()
	for range workers {
		if err := <-errs; err != nil {
			t.Errorf("VerifyAccessToken: %v", err)
		}
	}
	if n := js.fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times by %d concurrent verifications, want 1", n, workers)
	}
}

// BenchmarkVerifyAccessToken measures verification with a warm key cache.
func BenchmarkVerifyAccessToken(b *testing.B) {
	a, _ := testKeys(b)
	now := time.Unix(1_800_000_000, 0)
	up := fuzzUpstream(b, &a.PublicKey, now)
	tok := signRS256(b, a, map[string]any{"alg": "RS256", "kid": "ka"}, validClaims(now))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := up.VerifyAccessToken(b.Context(), tok, "https://tg.example/mcp"); err != nil {
			b.Fatal(err)
		}
	}
}
