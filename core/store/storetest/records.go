package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

func testClientsCRUD(t *testing.T, h *harness) {
	b := h.client("client-b")
	a := h.client("client-a", func(c *store.Client) { c.SecretHash = ""; c.TokenEndpointAuthMethod = "none" })

	got, err := h.s.GetClient(h.ctx, "client-a")
	wantErr(t, "GetClient", err, nil)
	equal(t, "GetClient", got, a)

	wantErr(t, "CreateClient duplicate", h.s.CreateClient(h.ctx, a), store.ErrAlreadyExists)

	list, err := h.s.ListClients(h.ctx)
	wantErr(t, "ListClients", err, nil)
	equal(t, "ListClients (ordered by ID)", list, []store.Client{a, b})

	updated, err := h.s.UpdateClient(h.ctx, "client-b", func(c *store.Client) error {
		c.Name = "Renamed"
		c.RedirectURIs = append(c.RedirectURIs, "https://other.example/cb")
		return nil
	})
	wantErr(t, "UpdateClient", err, nil)
	want := b
	want.Name = "Renamed"
	want.RedirectURIs = append(append([]string(nil), b.RedirectURIs...), "https://other.example/cb")
	equal(t, "UpdateClient result", updated, want)
	got, err = h.s.GetClient(h.ctx, "client-b")
	wantErr(t, "GetClient after update", err, nil)
	equal(t, "GetClient after update", got, want)

	_, err = h.s.UpdateClient(h.ctx, "client-b", func(c *store.Client) error {
		c.Name = "Not stored"
		return errBoom
	})
	wantErr(t, "UpdateClient returning an error", err, errBoom)
	got, _ = h.s.GetClient(h.ctx, "client-b")
	equal(t, "client after failed update", got, want)

	_, err = h.s.UpdateClient(h.ctx, "missing", func(*store.Client) error { return nil })
	wantErr(t, "UpdateClient missing", err, store.ErrNotFound)
	_, err = h.s.GetClient(h.ctx, "missing")
	wantErr(t, "GetClient missing", err, store.ErrNotFound)

	wantErr(t, "DeleteClient", h.s.DeleteClient(h.ctx, "client-a"), nil)
	_, err = h.s.GetClient(h.ctx, "client-a")
	wantErr(t, "GetClient after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteClient again", h.s.DeleteClient(h.ctx, "client-a"), store.ErrNotFound)
	list, err = h.s.ListClients(h.ctx)
	wantErr(t, "ListClients after delete", err, nil)
	equal(t, "ListClients after delete", list, []store.Client{want})
}

func testClientsExpiry(t *testing.T, h *harness) {
	live := h.client("live")
	h.client("expired", func(c *store.Client) { c.ExpiresAt = past() })
	never := h.client("never", func(c *store.Client) { c.ExpiresAt = time.Time{} })

	_, err := h.s.GetClient(h.ctx, "expired")
	wantErr(t, "GetClient expired", err, store.ErrNotFound)
	_, err = h.s.UpdateClient(h.ctx, "expired", func(*store.Client) error { return nil })
	wantErr(t, "UpdateClient expired", err, store.ErrNotFound)
	list, err := h.s.ListClients(h.ctx)
	wantErr(t, "ListClients", err, nil)
	equal(t, "ListClients skips the expired client", list, []store.Client{live, never})

	// An expired record does not block a new one with the same key.
	again := h.client("expired")
	got, err := h.s.GetClient(h.ctx, "expired")
	wantErr(t, "GetClient recreated", err, nil)
	equal(t, "GetClient recreated", got, again)
}

func testClientsInvalid(t *testing.T, h *harness) {
	wantErr(t, "CreateClient with empty ID", h.s.CreateClient(h.ctx, store.Client{}), store.ErrInvalid)
	wantErr(t, "CreateGrant with empty ID", h.s.CreateGrant(h.ctx, store.Grant{ClientID: "c"}), store.ErrInvalid)
	wantErr(t, "CreateAuthCode with empty hash", h.s.CreateAuthCode(h.ctx, store.AuthCode{}), store.ErrInvalid)
	wantErr(t, "CreatePendingAuthorization with empty hash", h.s.CreatePendingAuthorization(h.ctx, store.PendingAuthorization{}), store.ErrInvalid)
	_, err := h.s.GetToken(h.ctx, "")
	wantErr(t, "GetToken with empty hash", err, store.ErrInvalid)
}

func testPendingConsume(t *testing.T, h *harness) {
	p := pending(hashOf("state-1"))
	wantErr(t, "CreatePendingAuthorization", h.s.CreatePendingAuthorization(h.ctx, p), nil)
	wantErr(t, "CreatePendingAuthorization duplicate", h.s.CreatePendingAuthorization(h.ctx, p), store.ErrAlreadyExists)

	before := time.Now()
	got, err := h.s.ConsumePendingAuthorization(h.ctx, p.StateHash)
	wantErr(t, "ConsumePendingAuthorization", err, nil)
	if got.UsedAt.IsZero() || got.UsedAt.Before(before.Truncate(time.Millisecond)) {
		t.Fatalf("UsedAt = %v, want a time at or after %v", got.UsedAt, before)
	}
	want := p
	want.UsedAt = got.UsedAt
	equal(t, "consumed record", got, want)

	again, err := h.s.ConsumePendingAuthorization(h.ctx, p.StateHash)
	wantErr(t, "ConsumePendingAuthorization again", err, store.ErrAlreadyUsed)
	equal(t, "record returned with ErrAlreadyUsed", again, want)

	_, err = h.s.ConsumePendingAuthorization(h.ctx, hashOf("unknown"))
	wantErr(t, "ConsumePendingAuthorization unknown", err, store.ErrNotFound)
}

func testPendingExpiry(t *testing.T, h *harness) {
	p := pending(hashOf("state-expired"))
	p.ExpiresAt = past()
	wantErr(t, "CreatePendingAuthorization expired", h.s.CreatePendingAuthorization(h.ctx, p), nil)
	_, err := h.s.ConsumePendingAuthorization(h.ctx, p.StateHash)
	wantErr(t, "ConsumePendingAuthorization expired", err, store.ErrNotFound)
}

func testAuthCodeExchange(t *testing.T, h *harness) {
	h.client("c")
	g := h.grant("g", "c", "user", "user@example.com")
	code := h.code(hashOf("code"), g)
	wantErr(t, "CreateAuthCode duplicate", h.s.CreateAuthCode(h.ctx, code), store.ErrAlreadyExists)

	access, refresh := token(hashOf("access"), store.AccessToken, g), token(hashOf("refresh"), store.RefreshToken, g)
	got, err := h.s.ExchangeAuthCode(h.ctx, code.CodeHash, []store.Token{access, refresh}, time.Time{})
	wantErr(t, "ExchangeAuthCode", err, nil)
	if got.UsedAt.IsZero() {
		t.Fatal("ExchangeAuthCode returned a code without UsedAt")
	}
	want := code
	want.UsedAt = got.UsedAt
	equal(t, "exchanged code", got, want)
	for _, tok := range []store.Token{access, refresh} {
		stored, err := h.s.GetToken(h.ctx, tok.Hash)
		wantErr(t, "GetToken issued by exchange", err, nil)
		equal(t, "issued token", stored, tok)
	}

	replay := token(hashOf("replay"), store.AccessToken, g)
	again, err := h.s.ExchangeAuthCode(h.ctx, code.CodeHash, []store.Token{replay}, time.Time{})
	wantErr(t, "ExchangeAuthCode replay", err, store.ErrAlreadyUsed)
	equal(t, "code returned with ErrAlreadyUsed", again, want)
	_, err = h.s.GetToken(h.ctx, replay.Hash)
	wantErr(t, "token passed to a replayed exchange", err, store.ErrNotFound)

	_, err = h.s.ExchangeAuthCode(h.ctx, hashOf("unknown"), nil, time.Time{})
	wantErr(t, "ExchangeAuthCode unknown", err, store.ErrNotFound)
}

func testAuthCodeExchangeAtomic(t *testing.T, h *harness) {
	h.client("c")
	g := h.grant("g", "c", "user", "user@example.com")
	existing := token(hashOf("existing"), store.AccessToken, g)
	h.issue(g, existing)

	code := h.code(hashOf("code"), g)
	fresh := token(hashOf("fresh"), store.AccessToken, g)
	clash := token(hashOf("existing"), store.RefreshToken, g) // same hash as a live token
	if _, err := h.s.ExchangeAuthCode(h.ctx, code.CodeHash, []store.Token{fresh, clash}, time.Time{}); err == nil {
		t.Fatal("ExchangeAuthCode issuing a hash that is already a live token succeeded")
	}
	_, err := h.s.GetToken(h.ctx, fresh.Hash)
	wantErr(t, "token of a failed exchange", err, store.ErrNotFound)
	got, err := h.s.GetToken(h.ctx, existing.Hash)
	wantErr(t, "token that clashed", err, nil)
	equal(t, "token that clashed is unchanged", got, existing)

	// The code was not consumed: a correct exchange still works.
	if _, err := h.s.ExchangeAuthCode(h.ctx, code.CodeHash, []store.Token{fresh}, time.Time{}); err != nil {
		t.Fatalf("ExchangeAuthCode after a failed one: %v", err)
	}
	_, err = h.s.GetToken(h.ctx, fresh.Hash)
	wantErr(t, "token of the second exchange", err, nil)
}

func testAuthCodeExpiry(t *testing.T, h *harness) {
	h.client("c")
	g := h.grant("g", "c", "user", "")
	code := h.code(hashOf("expired"), g, func(c *store.AuthCode) { c.ExpiresAt = past() })
	tok := token(hashOf("t"), store.AccessToken, g)
	_, err := h.s.ExchangeAuthCode(h.ctx, code.CodeHash, []store.Token{tok}, time.Time{})
	wantErr(t, "ExchangeAuthCode expired", err, store.ErrNotFound)
	_, err = h.s.GetToken(h.ctx, tok.Hash)
	wantErr(t, "token of an expired code", err, store.ErrNotFound)
}

// testAuthCodeExchangeExtendsGrant covers grantExpiresAt: a grant created
// to live only as long as its code becomes a full grant when, and only
// when, the code is exchanged; unexchanged, it expires with the code.
func testAuthCodeExchangeExtendsGrant(t *testing.T, h *harness) {
	h.client("c", func(c *store.Client) { c.ExpiresAt = time.Time{} }) // outlives the codes
	codeExp := later()
	full := now().Add(30 * 24 * time.Hour)
	pendingGrant := func(id string) store.Grant {
		return h.grant(id, "c", "user-"+id, "", func(g *store.Grant) { g.ExpiresAt = codeExp })
	}

	// An exchange extends the grant, atomically with issuing its tokens.
	exchanged := pendingGrant("exchanged")
	code := h.code(hashOf("code-exchanged"), exchanged, func(c *store.AuthCode) { c.ExpiresAt = codeExp })
	access := token(hashOf("access-exchanged"), store.AccessToken, exchanged)
	_, err := h.s.ExchangeAuthCode(h.ctx, code.CodeHash, []store.Token{access}, full)
	wantErr(t, "ExchangeAuthCode with grantExpiresAt", err, nil)
	want := exchanged
	want.ExpiresAt = full
	got, err := h.s.GetGrant(h.ctx, exchanged.ID)
	wantErr(t, "GetGrant after the exchange", err, nil)
	equal(t, "grant after the exchange (only ExpiresAt changes)", got, want)

	// A replayed exchange extends nothing.
	_, err = h.s.ExchangeAuthCode(h.ctx, code.CodeHash, nil, full.Add(time.Hour))
	wantErr(t, "ExchangeAuthCode replay", err, store.ErrAlreadyUsed)
	got, err = h.s.GetGrant(h.ctx, exchanged.ID)
	wantErr(t, "GetGrant after the replay", err, nil)
	equal(t, "grant after a replayed exchange", got, want)

	// A failed exchange (a token hash clash) extends nothing.
	failed := pendingGrant("failed")
	failedCode := h.code(hashOf("code-failed"), failed, func(c *store.AuthCode) { c.ExpiresAt = codeExp })
	clash := token(hashOf("access-exchanged"), store.AccessToken, failed)
	if _, err := h.s.ExchangeAuthCode(h.ctx, failedCode.CodeHash, []store.Token{clash}, full); err == nil {
		t.Fatal("ExchangeAuthCode issuing a hash that is already a live token succeeded")
	}
	got, err = h.s.GetGrant(h.ctx, failed.ID)
	wantErr(t, "GetGrant after a failed exchange", err, nil)
	equal(t, "grant after a failed exchange", got, failed)

	// An earlier grantExpiresAt never shortens a grant, and a grant that
	// never expires stays so.
	long := h.grant("long", "c", "user-long", "", func(g *store.Grant) { g.ExpiresAt = full })
	longCode := h.code(hashOf("code-long"), long)
	_, err = h.s.ExchangeAuthCode(h.ctx, longCode.CodeHash, nil, codeExp)
	wantErr(t, "ExchangeAuthCode with an earlier grantExpiresAt", err, nil)
	forever := h.grant("forever", "c", "user-forever", "", func(g *store.Grant) { g.ExpiresAt = time.Time{} })
	foreverCode := h.code(hashOf("code-forever"), forever)
	_, err = h.s.ExchangeAuthCode(h.ctx, foreverCode.CodeHash, nil, full)
	wantErr(t, "ExchangeAuthCode for a grant that never expires", err, nil)
	for _, g := range []store.Grant{long, forever} {
		got, err := h.s.GetGrant(h.ctx, g.ID)
		wantErr(t, "GetGrant "+g.ID, err, nil)
		equal(t, "grant "+g.ID+" after the exchange", got, g)
	}

	// The grant must be live: a revoked one fails the exchange, which
	// issues nothing.
	revoked := pendingGrant("revoked")
	revokedCode := h.code(hashOf("code-revoked"), revoked)
	wantErr(t, "RevokeGrant", h.s.RevokeGrant(h.ctx, revoked.ID), nil)
	orphan := token(hashOf("access-revoked"), store.AccessToken, revoked)
	_, err = h.s.ExchangeAuthCode(h.ctx, revokedCode.CodeHash, []store.Token{orphan}, full)
	wantErr(t, "ExchangeAuthCode for a revoked grant", err, store.ErrNotFound)
	_, err = h.s.GetToken(h.ctx, orphan.Hash)
	wantErr(t, "token of an exchange for a revoked grant", err, store.ErrNotFound)

	// The extension is durable, and once the codes have expired the
	// unexchanged grant is gone while the exchanged one lives on.
	unexchanged := pendingGrant("unexchanged")
	h.code(hashOf("code-unexchanged"), unexchanged, func(c *store.AuthCode) { c.ExpiresAt = codeExp })
	h.reopen()
	wantErr(t, "GarbageCollect after the codes expired", h.s.GarbageCollect(h.ctx, codeExp.Add(time.Minute)), nil)
	_, err = h.s.GetGrant(h.ctx, unexchanged.ID)
	wantErr(t, "GetGrant of the unexchanged grant after its code expired", err, store.ErrNotFound)
	list, err := h.s.ListGrants(h.ctx, store.GrantFilter{ClientID: "c"})
	wantErr(t, "ListGrants", err, nil)
	left := ids(list, grantID)
	slices.Sort(left) // created within the same few milliseconds: CreatedAt order is not fixed
	sameStrings(t, "grants left after the codes expired", left, []string{"exchanged", "forever", "long"})
	got, err = h.s.GetGrant(h.ctx, exchanged.ID)
	wantErr(t, "GetGrant of the exchanged grant after its code expired", err, nil)
	equal(t, "exchanged grant after a reopen", got, want)
}

func testGrantsCRUD(t *testing.T, h *harness) {
	g := store.Grant{ID: "g", ClientID: "nope", UserID: "u", CreatedAt: now()}
	wantErr(t, "CreateGrant for a missing client", h.s.CreateGrant(h.ctx, g), store.ErrNotFound)

	h.client("c")
	g = h.grant("g", "c", "user", "User@Example.com")
	wantErr(t, "CreateGrant duplicate", h.s.CreateGrant(h.ctx, g), store.ErrAlreadyExists)
	got, err := h.s.GetGrant(h.ctx, "g")
	wantErr(t, "GetGrant", err, nil)
	equal(t, "GetGrant", got, g)

	updated, err := h.s.UpdateGrant(h.ctx, "g", func(x *store.Grant) error {
		x.Role = "admin"
		x.Permissions = []string{"a", "b"}
		x.Email = "new@example.com"
		x.UpdatedAt = x.UpdatedAt.Add(time.Second)
		return nil
	})
	wantErr(t, "UpdateGrant", err, nil)
	want := g
	want.Role, want.Permissions, want.Email, want.UpdatedAt = "admin", []string{"a", "b"}, "new@example.com", g.UpdatedAt.Add(time.Second)
	equal(t, "UpdateGrant result", updated, want)
	got, _ = h.s.GetGrant(h.ctx, "g")
	equal(t, "GetGrant after update", got, want)

	// Indexes follow the update: the old e-mail no longer matches.
	list, err := h.s.ListGrants(h.ctx, store.GrantFilter{Email: "user@example.com"})
	wantErr(t, "ListGrants old e-mail", err, nil)
	sameStrings(t, "ListGrants by the old e-mail", ids(list, grantID), nil)
	list, _ = h.s.ListGrants(h.ctx, store.GrantFilter{Email: "NEW@example.com"})
	sameStrings(t, "ListGrants by the new e-mail", ids(list, grantID), []string{"g"})

	_, err = h.s.GetGrant(h.ctx, "missing")
	wantErr(t, "GetGrant missing", err, store.ErrNotFound)
	_, err = h.s.UpdateGrant(h.ctx, "missing", func(*store.Grant) error { return nil })
	wantErr(t, "UpdateGrant missing", err, store.ErrNotFound)
}

func testGrantsUpdateError(t *testing.T, h *harness) {
	h.client("c")
	g := h.grant("g", "c", "user", "user@example.com")
	_, err := h.s.UpdateGrant(h.ctx, "g", func(x *store.Grant) error {
		x.Role = "changed"
		x.Permissions[0] = "mutated"
		x.UserID = "someone-else"
		return errBoom
	})
	wantErr(t, "UpdateGrant returning an error", err, errBoom)
	got, err := h.s.GetGrant(h.ctx, "g")
	wantErr(t, "GetGrant", err, nil)
	equal(t, "grant after failed update", got, g)
	list, _ := h.s.ListGrants(h.ctx, store.GrantFilter{UserID: "someone-else"})
	sameStrings(t, "ListGrants by the user a failed update set", ids(list, grantID), nil)
}

func testGrantsList(t *testing.T, h *harness) {
	h.client("c1")
	h.client("c2")
	base := now()
	at := func(d int) func(*store.Grant) {
		return func(g *store.Grant) { g.CreatedAt = base.Add(time.Duration(d) * time.Millisecond) }
	}
	// Created out of order; equal CreatedAt is ordered by ID.
	h.grant("g3", "c1", "alice", "Alice@Example.com", at(30))
	h.grant("g1", "c2", "alice", "alice@example.com", at(10))
	h.grant("g2b", "c1", "bob", "bob@example.com", at(20))
	h.grant("g2a", "c2", "alice", "ALICE@example.COM", at(20))
	h.grant("gx", "c1", "carol", "", at(0), func(g *store.Grant) { g.ExpiresAt = past() })

	tests := []struct {
		name   string
		filter store.GrantFilter
		want   []string
	}{
		{"all", store.GrantFilter{}, []string{"g1", "g2a", "g2b", "g3"}},
		{"by user", store.GrantFilter{UserID: "alice"}, []string{"g1", "g2a", "g3"}},
		{"by e-mail, any case", store.GrantFilter{Email: "aLiCe@eXaMpLe.CoM"}, []string{"g1", "g2a", "g3"}},
		{"by client", store.GrantFilter{ClientID: "c1"}, []string{"g2b", "g3"}},
		{"by user and client", store.GrantFilter{UserID: "alice", ClientID: "c2"}, []string{"g1", "g2a"}},
		{"by e-mail and client", store.GrantFilter{Email: "bob@example.com", ClientID: "c2"}, nil},
		{"unknown user", store.GrantFilter{UserID: "dave"}, nil},
		{"expired grant's user", store.GrantFilter{UserID: "carol"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, err := h.s.ListGrants(h.ctx, tc.filter)
			wantErr(t, "ListGrants", err, nil)
			sameStrings(t, "ListGrants", ids(list, grantID), tc.want)
		})
	}
}

func testGrantsExpiry(t *testing.T, h *harness) {
	h.client("c")
	h.grant("g", "c", "u", "u@example.com", func(g *store.Grant) { g.ExpiresAt = past() })
	_, err := h.s.GetGrant(h.ctx, "g")
	wantErr(t, "GetGrant expired", err, store.ErrNotFound)
	_, err = h.s.UpdateGrant(h.ctx, "g", func(*store.Grant) error { return nil })
	wantErr(t, "UpdateGrant expired", err, store.ErrNotFound)
	wantErr(t, "RevokeGrant expired", h.s.RevokeGrant(h.ctx, "g"), store.ErrNotFound)
	// An expired grant does not block a new one with the same ID.
	g := h.grant("g", "c", "u2", "u2@example.com")
	got, err := h.s.GetGrant(h.ctx, "g")
	wantErr(t, "GetGrant recreated", err, nil)
	equal(t, "GetGrant recreated", got, g)
	list, _ := h.s.ListGrants(h.ctx, store.GrantFilter{UserID: "u"})
	sameStrings(t, "ListGrants by the expired grant's user", ids(list, grantID), nil)
}

func testGrantsRevoke(t *testing.T, h *harness) {
	h.client("c")
	g1 := h.grant("g1", "c", "u", "u@example.com")
	g2 := h.grant("g2", "c", "u", "u@example.com")
	t1, t2 := token(hashOf("t1a"), store.AccessToken, g1), token(hashOf("t1r"), store.RefreshToken, g1)
	other := token(hashOf("t2a"), store.AccessToken, g2)
	h.issue(g1, t1, t2)
	h.issue(g2, other)

	wantErr(t, "RevokeGrant", h.s.RevokeGrant(h.ctx, "g1"), nil)
	_, err := h.s.GetGrant(h.ctx, "g1")
	wantErr(t, "GetGrant revoked", err, store.ErrNotFound)
	for _, tok := range []store.Token{t1, t2} {
		_, err := h.s.GetToken(h.ctx, tok.Hash)
		wantErr(t, "token of a revoked grant", err, store.ErrNotFound)
	}
	got, err := h.s.GetToken(h.ctx, other.Hash)
	wantErr(t, "token of another grant", err, nil)
	equal(t, "token of another grant", got, other)
	list, _ := h.s.ListGrants(h.ctx, store.GrantFilter{UserID: "u"})
	sameStrings(t, "ListGrants after revoke", ids(list, grantID), []string{"g2"})
	wantErr(t, "RevokeGrant again", h.s.RevokeGrant(h.ctx, "g1"), store.ErrNotFound)
}

func testTokensGetDelete(t *testing.T, h *harness) {
	h.client("c")
	g := h.grant("g", "c", "u", "")
	a, b := token(hashOf("a"), store.AccessToken, g), token(hashOf("b"), store.AccessToken, g)
	h.issue(g, a, b)
	got, err := h.s.GetToken(h.ctx, a.Hash)
	wantErr(t, "GetToken", err, nil)
	equal(t, "GetToken", got, a)
	wantErr(t, "DeleteToken", h.s.DeleteToken(h.ctx, a.Hash), nil)
	_, err = h.s.GetToken(h.ctx, a.Hash)
	wantErr(t, "GetToken deleted", err, store.ErrNotFound)
	wantErr(t, "DeleteToken again", h.s.DeleteToken(h.ctx, a.Hash), store.ErrNotFound)
	_, err = h.s.GetToken(h.ctx, b.Hash)
	wantErr(t, "GetToken of the other token", err, nil)
	_, err = h.s.GetGrant(h.ctx, "g")
	wantErr(t, "grant of a deleted token", err, nil)
}

func testTokensExpiry(t *testing.T, h *harness) {
	h.client("c")
	g := h.grant("g", "c", "u", "")
	access := token(hashOf("a"), store.AccessToken, g)
	access.ExpiresAt = past()
	refresh := token(hashOf("r"), store.RefreshToken, g)
	refresh.ExpiresAt = past()
	h.issue(g, access, refresh)
	_, err := h.s.GetToken(h.ctx, access.Hash)
	wantErr(t, "GetToken expired", err, store.ErrNotFound)
	_, err = h.s.RotateRefreshToken(h.ctx, refresh.Hash, []store.Token{token(hashOf("n"), store.RefreshToken, g)}, nil)
	wantErr(t, "RotateRefreshToken expired", err, store.ErrNotFound)
	_, err = h.s.GetToken(h.ctx, hashOf("n"))
	wantErr(t, "token of a failed rotation", err, store.ErrNotFound)
}

func testTokensRotate(t *testing.T, h *harness) {
	h.client("c")
	g := h.grant("g", "c", "u", "")
	old := token(hashOf("r0"), store.RefreshToken, g)
	h.issue(g, old)

	newAccess, newRefresh := token(hashOf("a1"), store.AccessToken, g), token(hashOf("r1"), store.RefreshToken, g)
	got, err := h.s.RotateRefreshToken(h.ctx, old.Hash, []store.Token{newAccess, newRefresh}, func(x *store.Grant) error {
		x.Permissions = []string{"refreshed"}
		return nil
	})
	wantErr(t, "RotateRefreshToken", err, nil)
	if got.Hash != old.Hash {
		t.Fatalf("RotateRefreshToken returned token %q, want the old one", got.Hash)
	}
	for _, tok := range []store.Token{newAccess, newRefresh} {
		stored, err := h.s.GetToken(h.ctx, tok.Hash)
		wantErr(t, "GetToken of a rotated-in token", err, nil)
		equal(t, "rotated-in token", stored, tok)
	}
	stored, err := h.s.GetToken(h.ctx, old.Hash)
	wantErr(t, "the used refresh token stays stored", err, nil)
	if stored.UsedAt.IsZero() {
		t.Fatal("the rotated refresh token is not marked used")
	}
	gr, _ := h.s.GetGrant(h.ctx, "g")
	sameStrings(t, "grant permissions after rotation", gr.Permissions, []string{"refreshed"})

	replay := token(hashOf("r2"), store.RefreshToken, g)
	again, err := h.s.RotateRefreshToken(h.ctx, old.Hash, []store.Token{replay}, nil)
	wantErr(t, "RotateRefreshToken reuse", err, store.ErrAlreadyUsed)
	if again.Hash != old.Hash || again.GrantID != "g" {
		t.Fatalf("reuse returned %+v, want the old token", again)
	}
	_, err = h.s.GetToken(h.ctx, replay.Hash)
	wantErr(t, "token passed with a reused refresh token", err, store.ErrNotFound)

	// The new refresh token rotates in turn, without a grant update.
	_, err = h.s.RotateRefreshToken(h.ctx, newRefresh.Hash, []store.Token{replay}, nil)
	wantErr(t, "RotateRefreshToken of the new token", err, nil)
	_, err = h.s.RotateRefreshToken(h.ctx, hashOf("unknown"), nil, nil)
	wantErr(t, "RotateRefreshToken unknown", err, store.ErrNotFound)
}

func testTokensRotateAtomic(t *testing.T, h *harness) {
	h.client("c")
	g := h.grant("g", "c", "u", "")
	old := token(hashOf("r0"), store.RefreshToken, g)
	h.issue(g, old)
	fresh := token(hashOf("r1"), store.RefreshToken, g)
	_, err := h.s.RotateRefreshToken(h.ctx, old.Hash, []store.Token{fresh}, func(x *store.Grant) error {
		x.Role = "changed"
		return errBoom
	})
	wantErr(t, "RotateRefreshToken with a failing grant update", err, errBoom)
	stored, _ := h.s.GetToken(h.ctx, old.Hash)
	if !stored.UsedAt.IsZero() {
		t.Fatal("a failed rotation marked the refresh token used")
	}
	_, err = h.s.GetToken(h.ctx, fresh.Hash)
	wantErr(t, "token of a failed rotation", err, store.ErrNotFound)
	gr, _ := h.s.GetGrant(h.ctx, "g")
	equal(t, "grant after a failed rotation", gr, g)

	clash := token(old.Hash, store.AccessToken, g)
	if _, err := h.s.RotateRefreshToken(h.ctx, old.Hash, []store.Token{fresh, clash}, nil); err == nil {
		t.Fatal("RotateRefreshToken issuing a hash that is a live token succeeded")
	}
	_, err = h.s.GetToken(h.ctx, fresh.Hash)
	wantErr(t, "token of a failed rotation", err, store.ErrNotFound)
	if _, err := h.s.RotateRefreshToken(h.ctx, old.Hash, []store.Token{fresh}, nil); err != nil {
		t.Fatalf("RotateRefreshToken after failed ones: %v", err)
	}
}

func testConsents(t *testing.T, h *harness) {
	mk := func(user, client string) store.Consent {
		return store.Consent{UserID: user, ClientID: client, Scopes: []string{"mcp"}, CreatedAt: now(), ExpiresAt: later()}
	}
	b, a, other := mk("u", "client-b"), mk("u", "client-a"), mk("u2", "client-a")
	for _, c := range []store.Consent{b, a, other} {
		wantErr(t, "PutConsent", h.s.PutConsent(h.ctx, c), nil)
	}
	wantErr(t, "PutConsent expired", h.s.PutConsent(h.ctx, store.Consent{UserID: "u", ClientID: "client-x", CreatedAt: now(), ExpiresAt: past()}), nil)

	got, err := h.s.GetConsent(h.ctx, "u", "client-a")
	wantErr(t, "GetConsent", err, nil)
	equal(t, "GetConsent", got, a)
	_, err = h.s.GetConsent(h.ctx, "u", "client-x")
	wantErr(t, "GetConsent expired", err, store.ErrNotFound)
	_, err = h.s.GetConsent(h.ctx, "u", "client-c")
	wantErr(t, "GetConsent missing", err, store.ErrNotFound)

	list, err := h.s.ListConsents(h.ctx, "u")
	wantErr(t, "ListConsents", err, nil)
	equal(t, "ListConsents (ordered by client, live only, this user only)", list, []store.Consent{a, b})

	a.Scopes = []string{"mcp", "more"}
	wantErr(t, "PutConsent replacing", h.s.PutConsent(h.ctx, a), nil)
	got, _ = h.s.GetConsent(h.ctx, "u", "client-a")
	equal(t, "GetConsent after replace", got, a)

	wantErr(t, "DeleteConsent", h.s.DeleteConsent(h.ctx, "u", "client-a"), nil)
	_, err = h.s.GetConsent(h.ctx, "u", "client-a")
	wantErr(t, "GetConsent deleted", err, store.ErrNotFound)
	wantErr(t, "DeleteConsent again", h.s.DeleteConsent(h.ctx, "u", "client-a"), store.ErrNotFound)
	got, err = h.s.GetConsent(h.ctx, "u2", "client-a")
	wantErr(t, "another user's consent for the same client", err, nil)
	equal(t, "another user's consent", got, other)
}

func testDeleteClientCascade(t *testing.T, h *harness) {
	h.client("doomed")
	h.client("kept")
	g1 := h.grant("g1", "doomed", "u", "u@example.com")
	g2 := h.grant("g2", "doomed", "v", "v@example.com")
	g3 := h.grant("g3", "kept", "u", "u@example.com")
	doomed := []store.Token{token(hashOf("1a"), store.AccessToken, g1), token(hashOf("1r"), store.RefreshToken, g1), token(hashOf("2a"), store.AccessToken, g2)}
	h.issue(g1, doomed[0], doomed[1])
	h.issue(g2, doomed[2])
	kept := token(hashOf("3a"), store.AccessToken, g3)
	h.issue(g3, kept)

	wantErr(t, "DeleteClient", h.s.DeleteClient(h.ctx, "doomed"), nil)
	for _, id := range []string{"g1", "g2"} {
		_, err := h.s.GetGrant(h.ctx, id)
		wantErr(t, "grant of a deleted client", err, store.ErrNotFound)
	}
	for _, tok := range doomed {
		_, err := h.s.GetToken(h.ctx, tok.Hash)
		wantErr(t, "token of a deleted client", err, store.ErrNotFound)
	}
	_, err := h.s.GetGrant(h.ctx, "g3")
	wantErr(t, "grant of another client", err, nil)
	_, err = h.s.GetToken(h.ctx, kept.Hash)
	wantErr(t, "token of another client", err, nil)
	list, _ := h.s.ListGrants(h.ctx, store.GrantFilter{UserID: "u"})
	sameStrings(t, "ListGrants after DeleteClient", ids(list, grantID), []string{"g3"})
	list, _ = h.s.ListGrants(h.ctx, store.GrantFilter{ClientID: "doomed"})
	sameStrings(t, "ListGrants of the deleted client", ids(list, grantID), nil)
}
