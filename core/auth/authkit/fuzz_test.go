package authkit

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzUpstream returns an Upstream whose key set is preloaded with key "ka"
// and whose clock is fixed, so verification never does I/O.
func fuzzUpstream(t testing.TB, pub *rsa.PublicKey, now time.Time) *Upstream {
	t.Helper()
	up, err := New(Config{
		ClientID: "client_test", APIKey: "sk_test", JWKSURL: "http://127.0.0.1:1/jwks",
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	up.keys.keys = map[string]*rsa.PublicKey{"ka": pub}
	up.keys.fetchedAt = now
	up.keys.triedAt = now
	return up
}

func FuzzVerifyAccessToken(f *testing.F) {
	a, _ := testKeys(f)
	now := time.Unix(1_800_000_000, 0)
	hdr := map[string]any{"alg": "RS256", "kid": "ka"}
	good := signRS256(f, a, hdr, validClaims(now))
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(signRS256(f, a, hdr, with(validClaims(now), "aud", []string{"a", "b"}, "nbf", 1.5e9)))
	f.Add(signRS256(f, a, hdr, with(validClaims(now), "exp", "1")))
	f.Add(signRS256Raw(f, a, `{"alg":"RS256","kid":"ka"}`, `{"iss":"`+testIssuer+`","sub":"u","exp":1e300}`))
	f.Add(signRS256Raw(f, a, `{"alg":"RS256","kid":"ka"}`, `{}  {}`))
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("..")
	f.Add("a.b.c.d")
	f.Add("")

	up := fuzzUpstream(f, &a.PublicKey, now)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := up.VerifyAccessToken(t.Context(), token, "")
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			return
		}
		// Success is only possible for a token this test's key signed.
		p, perr := parseJWT(token)
		if perr != nil || p.header.Alg != "RS256" || p.verifySignature(&a.PublicKey) != nil {
			t.Fatalf("accepted a token that does not parse or verify: %q", token)
		}
		if c.Subject == "" || c.ExpiresAt.IsZero() || (c.Issuer != testIssuer && c.Issuer != DefaultAPIBaseURL) {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	a, _ := testKeys(f)
	b, _ := json.Marshal(map[string]any{"keys": []any{jwkJSON("ka", &a.PublicKey)}})
	f.Add(b)
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"","e":""}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseJWKS(body)
		if err != nil {
			return
		}
		if len(keys) == 0 {
			t.Fatal("parseJWKS succeeded with no keys")
		}
		for kid, k := range keys {
			if bits := k.N.BitLen(); bits < minRSAKeyBits || bits > maxRSAKeyBits || k.E < 3 || k.E%2 == 0 {
				t.Fatalf("key %q accepted with %d bits, e=%d", kid, bits, k.E)
			}
		}
	})
}
