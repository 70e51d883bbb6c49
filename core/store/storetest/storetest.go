// Package storetest is the conformance suite for toolgate storage backends:
// every implementation of store.Store runs RunTests against fresh, empty
// data, and passes it before it is used.
//
// A backend's own test calls it with a Factory:
//
//	func TestConformance(t *testing.T) {
//		storetest.RunTests(t, func(t *testing.T) func() (store.Store, error) {
//			dir := t.TempDir()
//			return func() (store.Store, error) {
//				return badgerstore.Open(t.Context(), badgerstore.Options{Dir: dir})
//			}
//		})
//	}
//
// Beyond what store.go spells out, the suite pins down these behaviours
// every backend shares:
//
//   - Deleting a record that is not there (DeleteClient, RevokeGrant,
//     DeleteToken, DeleteConsent) returns ErrNotFound; KVDelete does not.
//   - Issuing a token whose hash is already a live token fails and, like any
//     failure of ExchangeAuthCode or RotateRefreshToken, changes nothing.
//   - An empty client ID, grant ID, token hash, code hash or state hash is
//     ErrInvalid.
//   - KVList with a limit of zero returns every matching key.
//   - ListAudit orders by Time, newest first; AppendAudit rejects a taken
//     caller-chosen ID with ErrAlreadyExists.
//   - GarbageCollect(ctx, now) treats now as the present: a record expiring
//     before it is removed even if the wall clock has not got there yet.
//   - Close may be called twice.
package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// Factory prepares fresh, empty backing data for one subtest and returns
// open, which opens a store on that data. The suite calls open once per
// subtest and again after closing the store to check that everything
// survived; each call must see the same data. Whatever the factory sets up
// it releases through t.Cleanup; the suite closes the stores it opened.
type Factory func(t *testing.T) (open func() (store.Store, error))

// RunTests runs the whole suite, each case as a named subtest on fresh data.
func RunTests(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"Clients/CRUD", testClientsCRUD},
		{"Clients/Expiry", testClientsExpiry},
		{"Clients/Invalid", testClientsInvalid},
		{"PendingAuthorizations/Consume", testPendingConsume},
		{"PendingAuthorizations/Expiry", testPendingExpiry},
		{"AuthCodes/Exchange", testAuthCodeExchange},
		{"AuthCodes/ExchangeAllOrNothing", testAuthCodeExchangeAtomic},
		{"AuthCodes/Expiry", testAuthCodeExpiry},
		{"AuthCodes/ExchangeExtendsGrant", testAuthCodeExchangeExtendsGrant},
		{"Grants/CRUD", testGrantsCRUD},
		{"Grants/List", testGrantsList},
		{"Grants/Expiry", testGrantsExpiry},
		{"Grants/Revoke", testGrantsRevoke},
		{"Grants/UpdateError", testGrantsUpdateError},
		{"Tokens/GetDelete", testTokensGetDelete},
		{"Tokens/Expiry", testTokensExpiry},
		{"Tokens/Rotate", testTokensRotate},
		{"Tokens/RotateAllOrNothing", testTokensRotateAtomic},
		{"Consents", testConsents},
		{"PluginKV/CRUD", testKVCRUD},
		{"PluginKV/Invalid", testKVInvalid},
		{"PluginKV/Isolation", testKVIsolation},
		{"PluginKV/List", testKVList},
		{"PluginKV/TTL", testKVTTL},
		{"Audit/Append", testAuditAppend},
		{"Audit/Query", testAuditQuery},
		{"Audit/Expiry", testAuditExpiry},
		{"Audit/Batch", testAuditBatch},
		{"Expiry/Precise", testExpiryPrecise},
		{"Time/RoundTrip", testTimeRoundTrip},
		{"Concurrency/ExchangeAuthCode", testConcurrentExchange},
		{"Concurrency/ConsumePendingAuthorization", testConcurrentConsume},
		{"Concurrency/RotateRefreshToken", testConcurrentRotate},
		{"Concurrency/UpdateGrant", testConcurrentUpdateGrant},
		{"Atomicity/DeleteClient", testDeleteClientCascade},
		{"Watcher", testWatcher},
		{"GarbageCollect", testGarbageCollect},
		{"Close", testClose},
		{"Reopen", testReopen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newHarness(t, newStore))
		})
	}
}

// harness holds one subtest's store and can close and reopen it.
type harness struct {
	t    *testing.T
	ctx  context.Context
	open func() (store.Store, error)
	s    store.Store
}

func newHarness(t *testing.T, newStore Factory) *harness {
	t.Helper()
	h := &harness{t: t, ctx: t.Context(), open: newStore(t)}
	h.s = h.mustOpen()
	return h
}

func (h *harness) mustOpen() store.Store {
	h.t.Helper()
	s, err := h.open()
	if err != nil {
		h.t.Fatalf("open store: %v", err)
	}
	h.t.Cleanup(func() {
		if err := s.Close(); err != nil {
			h.t.Errorf("close store: %v", err)
		}
	})
	return s
}

// reopen closes the store and opens the same data again.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.s.Close(); err != nil {
		h.t.Fatalf("close store: %v", err)
	}
	h.s = h.mustOpen()
}

// now is the current time at millisecond precision, which every backend keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// past is an instant that has certainly passed.
func past() time.Time { return now().Add(-time.Hour) }

// later is an instant that certainly lies ahead for the whole test.
func later() time.Time { return now().Add(time.Hour) }

func (h *harness) client(id string, mod ...func(*store.Client)) store.Client {
	h.t.Helper()
	c := store.Client{
		ID:                      id,
		SecretHash:              store.HashSecret("secret-" + id),
		Name:                    "Client " + id,
		URI:                     "https://client.example/" + id,
		RedirectURIs:            []string{"https://client.example/cb", "http://127.0.0.1/cb"},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: "client_secret_basic",
		Scope:                   "mcp",
		Metadata:                []byte(`{"client_name":"x","extra":1}`),
		CreatedAt:               now(),
		LastUsedAt:              now(),
		ExpiresAt:               later(),
	}
	for _, m := range mod {
		m(&c)
	}
	if err := h.s.CreateClient(h.ctx, c); err != nil {
		h.t.Fatalf("CreateClient(%q): %v", id, err)
	}
	return c
}

func (h *harness) grant(id, clientID, userID, email string, mod ...func(*store.Grant)) store.Grant {
	h.t.Helper()
	g := store.Grant{
		ID:                   id,
		ClientID:             clientID,
		UserID:               userID,
		Email:                email,
		OrganizationID:       "org_1",
		Role:                 "0",
		Permissions:          []string{"image_generation"},
		Scopes:               []string{"mcp"},
		Resource:             "https://toolgate.example/mcp",
		UpstreamSessionID:    "session_" + id,
		UpstreamRefreshToken: []byte{0, 1, 2, 0xff},
		UpstreamExpiresAt:    now().Add(5 * time.Minute),
		CreatedAt:            now(),
		UpdatedAt:            now(),
		ExpiresAt:            later(),
	}
	for _, m := range mod {
		m(&g)
	}
	if err := h.s.CreateGrant(h.ctx, g); err != nil {
		h.t.Fatalf("CreateGrant(%q): %v", id, err)
	}
	return g
}

func token(hash string, kind store.TokenKind, g store.Grant) store.Token {
	return store.Token{
		Hash:      hash,
		Kind:      kind,
		GrantID:   g.ID,
		ClientID:  g.ClientID,
		Scopes:    []string{"mcp"},
		Resource:  g.Resource,
		CreatedAt: now(),
		ExpiresAt: later(),
	}
}

// issue stores tokens for grant g by exchanging a fresh authorization code.
func (h *harness) issue(g store.Grant, tokens ...store.Token) {
	h.t.Helper()
	code := h.code(store.HashSecret(store.NewSecret()), g)
	if _, err := h.s.ExchangeAuthCode(h.ctx, code.CodeHash, tokens, time.Time{}); err != nil {
		h.t.Fatalf("ExchangeAuthCode: %v", err)
	}
}

func (h *harness) code(hash string, g store.Grant, mod ...func(*store.AuthCode)) store.AuthCode {
	h.t.Helper()
	c := store.AuthCode{
		CodeHash:            hash,
		GrantID:             g.ID,
		ClientID:            g.ClientID,
		RedirectURI:         "https://client.example/cb",
		CodeChallenge:       "challenge",
		CodeChallengeMethod: "S256",
		Scopes:              []string{"mcp"},
		Resource:            g.Resource,
		CreatedAt:           now(),
		ExpiresAt:           later(),
	}
	for _, m := range mod {
		m(&c)
	}
	if err := h.s.CreateAuthCode(h.ctx, c); err != nil {
		h.t.Fatalf("CreateAuthCode: %v", err)
	}
	return c
}

func pending(hash string) store.PendingAuthorization {
	return store.PendingAuthorization{
		StateHash:            hash,
		ClientID:             "client",
		RedirectURI:          "https://client.example/cb",
		ClientState:          "client-state",
		CodeChallenge:        "challenge",
		CodeChallengeMethod:  "S256",
		Scopes:               []string{"mcp"},
		Resource:             "https://toolgate.example/mcp",
		UpstreamCodeVerifier: "verifier",
		BrowserBinding:       "binding",
		CreatedAt:            now(),
		ExpiresAt:            later(),
	}
}

// wantErr fails the test unless errors.Is(err, want) (want nil: err nil).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error: %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// equal fails the test unless got and want are the same records, comparing
// times with Equal and treating nil and empty slices alike.
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := normalize(reflect.ValueOf(got)), normalize(reflect.ValueOf(want)); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// normalize returns a comparable copy of v: times in UTC without a
// monotonic reading, empty slices as nil.
func normalize(v reflect.Value) any {
	switch {
	case !v.IsValid():
		return nil
	case v.Type() == timeType:
		return v.Interface().(time.Time).UTC().Round(0)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
		if v.Len() == 0 {
			return "bytes:"
		}
		return "bytes:" + string(v.Bytes())
	case v.Kind() == reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = normalize(v.Index(i))
		}
		return out
	case v.Kind() == reflect.Struct:
		out := make(map[string]any, v.NumField())
		for i := range v.NumField() {
			out[v.Type().Field(i).Name] = normalize(v.Field(i))
		}
		return out
	}
	return v.Interface()
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, x := range items {
		out[i] = id(x)
	}
	return out
}

func grantID(g store.Grant) string { return g.ID }

func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// errBoom is what failing update functions return.
var errBoom = errors.New("boom")

func hashOf(s string) string { return store.HashSecret(s) }
