package storetest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

func auditRecord(user, tool string, at time.Time) store.AuditRecord {
	return store.AuditRecord{
		Time:           at,
		UserID:         user,
		Email:          user + "@example.com",
		OrganizationID: "org_1",
		ClientID:       "client",
		Plugin:         "plugin",
		Tool:           tool,
		Decision:       "allow",
		Outcome:        "ok",
		Duration:       1500 * time.Microsecond,
	}
}

func testAuditAppend(t *testing.T, h *harness) {
	var prev string
	for i := range 5 {
		r := auditRecord("u", "tool", now())
		got, err := h.s.AppendAudit(h.ctx, r)
		wantErr(t, "AppendAudit", err, nil)
		if got.ID == "" {
			t.Fatal("AppendAudit did not assign an ID")
		}
		if i > 0 && got.ID <= prev {
			t.Fatalf("audit IDs out of append order: %q after %q", got.ID, prev)
		}
		prev = got.ID
		r.ID = got.ID
		equal(t, "AppendAudit result", got, r)
	}
	own := auditRecord("u", "tool", now())
	own.ID = "caller-chosen"
	got, err := h.s.AppendAudit(h.ctx, own)
	wantErr(t, "AppendAudit with an ID", err, nil)
	equal(t, "AppendAudit with an ID", got, own)
	_, err = h.s.AppendAudit(h.ctx, own)
	wantErr(t, "AppendAudit with a taken ID", err, store.ErrAlreadyExists)
	list, err := h.s.ListAudit(h.ctx, store.AuditQuery{})
	wantErr(t, "ListAudit", err, nil)
	if len(list) != 6 {
		t.Fatalf("ListAudit returned %d records, want 6", len(list))
	}
}

func testAuditQuery(t *testing.T, h *harness) {
	base := now().Add(-time.Minute)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	var ids []string
	for _, r := range []store.AuditRecord{
		auditRecord("alice", "add", at(0)),
		auditRecord("bob", "add", at(10)),
		auditRecord("alice", "whoami", at(20)),
		auditRecord("alice", "add", at(30)),
		auditRecord("bob", "generateImage", at(40)),
	} {
		got, err := h.s.AppendAudit(h.ctx, r)
		wantErr(t, "AppendAudit", err, nil)
		ids = append(ids, got.ID)
	}
	tests := []struct {
		name string
		q    store.AuditQuery
		want []int // indexes into ids, newest first
	}{
		{"all", store.AuditQuery{}, []int{4, 3, 2, 1, 0}},
		{"since", store.AuditQuery{Since: at(20)}, []int{4, 3, 2}},
		{"since, non-UTC", store.AuditQuery{Since: at(20).In(time.FixedZone("x", -7*3600))}, []int{4, 3, 2}},
		{"user", store.AuditQuery{UserID: "alice"}, []int{3, 2, 0}},
		{"tool", store.AuditQuery{Tool: "add"}, []int{3, 1, 0}},
		{"user and tool", store.AuditQuery{UserID: "bob", Tool: "add"}, []int{1}},
		{"limit", store.AuditQuery{Limit: 2}, []int{4, 3}},
		{"user, since and limit", store.AuditQuery{UserID: "alice", Since: at(1), Limit: 1}, []int{3}},
		{"nothing", store.AuditQuery{UserID: "carol"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, err := h.s.ListAudit(h.ctx, tc.q)
			wantErr(t, "ListAudit", err, nil)
			var want []string
			for _, i := range tc.want {
				want = append(want, ids[i])
			}
			sameStrings(t, "ListAudit", idsOf(list), want)
		})
	}
	// The default limit is 100.
	for range 100 {
		_, err := h.s.AppendAudit(h.ctx, auditRecord("many", "add", now()))
		wantErr(t, "AppendAudit", err, nil)
	}
	list, err := h.s.ListAudit(h.ctx, store.AuditQuery{})
	wantErr(t, "ListAudit", err, nil)
	if len(list) != 100 {
		t.Fatalf("ListAudit without a limit returned %d records, want 100", len(list))
	}
}

// testAuditBatch runs only for backends that implement store.AuditBatcher.
func testAuditBatch(t *testing.T, h *harness) {
	b, ok := h.s.(store.AuditBatcher)
	if !ok {
		t.Skip("store does not implement store.AuditBatcher")
	}
	empty, err := b.AppendAuditBatch(h.ctx, nil)
	wantErr(t, "AppendAuditBatch of nothing", err, nil)
	if len(empty) != 0 {
		t.Fatalf("AppendAuditBatch of nothing returned %d records", len(empty))
	}
	list, err := h.s.ListAudit(h.ctx, store.AuditQuery{})
	wantErr(t, "ListAudit", err, nil)
	sameStrings(t, "ListAudit after an empty batch", idsOf(list), nil)

	// Every record carries the same millisecond, so only the append order
	// tells them apart: single appends interleave with batches.
	at := now()
	var appended []string // IDs in append order
	single := func(tool string) {
		t.Helper()
		got, err := h.s.AppendAudit(h.ctx, auditRecord("u", tool, at))
		wantErr(t, "AppendAudit", err, nil)
		appended = append(appended, got.ID)
	}
	batch := func(n int) {
		t.Helper()
		rs := make([]store.AuditRecord, n)
		for i := range rs {
			rs[i] = auditRecord("u", "batch-"+strconv.Itoa(i), at)
		}
		got, err := b.AppendAuditBatch(h.ctx, rs)
		wantErr(t, "AppendAuditBatch", err, nil)
		if len(got) != n {
			t.Fatalf("AppendAuditBatch of %d records returned %d", n, len(got))
		}
		for i, r := range got {
			if r.ID == "" {
				t.Fatalf("AppendAuditBatch record %d: no ID assigned", i)
			}
			want := rs[i]
			want.ID = r.ID
			equal(t, "AppendAuditBatch record "+strconv.Itoa(i), r, want)
			appended = append(appended, r.ID)
		}
	}
	single("first")
	batch(7)
	single("middle")
	batch(1)
	batch(3)
	single("last")
	for i := 1; i < len(appended); i++ {
		if appended[i] <= appended[i-1] {
			t.Fatalf("IDs do not increase in append order: %q", appended)
		}
	}
	list, err = h.s.ListAudit(h.ctx, store.AuditQuery{})
	wantErr(t, "ListAudit", err, nil)
	want := slices.Clone(appended)
	slices.Reverse(want)
	sameStrings(t, "ListAudit after batches", idsOf(list), want)

	// A batch with a taken ID stores none of its records.
	taken := auditRecord("u", "own", at)
	taken.ID = appended[0]
	_, err = b.AppendAuditBatch(h.ctx, []store.AuditRecord{auditRecord("u", "lost", at), taken})
	wantErr(t, "AppendAuditBatch with a taken ID", err, store.ErrAlreadyExists)
	dup := auditRecord("u", "dup", at)
	dup.ID = "own-id"
	_, err = b.AppendAuditBatch(h.ctx, []store.AuditRecord{dup, dup})
	wantErr(t, "AppendAuditBatch with an ID twice", err, store.ErrAlreadyExists)
	list, err = h.s.ListAudit(h.ctx, store.AuditQuery{})
	wantErr(t, "ListAudit", err, nil)
	sameStrings(t, "ListAudit after failed batches", idsOf(list), want)

	h.reopen()
	list, err = h.s.ListAudit(h.ctx, store.AuditQuery{})
	wantErr(t, "ListAudit after reopen", err, nil)
	sameStrings(t, "ListAudit after reopen", idsOf(list), want)
}

func idsOf(list []store.AuditRecord) []string {
	out := make([]string, len(list))
	for i, r := range list {
		out[i] = r.ID
	}
	return out
}

func testAuditExpiry(t *testing.T, h *harness) {
	expired := auditRecord("u", "old", now())
	expired.ExpiresAt = past()
	kept := auditRecord("u", "new", now())
	kept.ExpiresAt = later()
	_, err := h.s.AppendAudit(h.ctx, expired)
	wantErr(t, "AppendAudit expired", err, nil)
	k, err := h.s.AppendAudit(h.ctx, kept)
	wantErr(t, "AppendAudit", err, nil)
	list, err := h.s.ListAudit(h.ctx, store.AuditQuery{})
	wantErr(t, "ListAudit", err, nil)
	sameStrings(t, "ListAudit skips expired records", idsOf(list), []string{k.ID})
}

// testExpiryPrecise checks that expiry is exact to the millisecond, not to
// a backend's coarser TTL: a read that finished before ExpiresAt sees the
// record, and one that started after it does not.
func testExpiryPrecise(t *testing.T, h *harness) {
	h.client("c")
	exp := time.Now().Add(150 * time.Millisecond)
	h.grant("g", "c", "u", "", func(g *store.Grant) { g.ExpiresAt = exp })
	wantErr(t, "KVPut", h.s.KVPut(h.ctx, "p", "k", []byte("v"), time.Until(exp)), nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		start := time.Now()
		_, gerr := h.s.GetGrant(h.ctx, "g")
		list, lerr := h.s.ListGrants(h.ctx, store.GrantFilter{UserID: "u"})
		end := time.Now()
		wantErr(t, "ListGrants", lerr, nil)
		switch {
		case end.Before(exp):
			wantErr(t, "GetGrant before ExpiresAt", gerr, nil)
			sameStrings(t, "ListGrants before ExpiresAt", ids(list, grantID), []string{"g"})
		case start.After(exp.Add(time.Millisecond)):
			wantErr(t, "GetGrant after ExpiresAt", gerr, store.ErrNotFound)
			sameStrings(t, "ListGrants after ExpiresAt", ids(list, grantID), nil)
			// Well inside Badger-style one-second TTL rounding.
			if start.Before(exp.Add(500 * time.Millisecond)) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("never observed the grant shortly after its expiry")
		}
	}
}

func testTimeRoundTrip(t *testing.T, h *harness) {
	zone := time.FixedZone("UTC+05:30", 5*3600+1800)
	local := time.Date(2031, 3, 4, 5, 6, 7, 123_000_000, zone)
	h.client("c", func(c *store.Client) {
		c.CreatedAt, c.LastUsedAt, c.SecretExpiresAt, c.ExpiresAt = local, local, time.Time{}, time.Time{}
	})
	h.grant("g", "c", "u", "", func(g *store.Grant) { g.CreatedAt, g.UpdatedAt, g.ExpiresAt = local, local, local })
	c, err := h.s.GetClient(h.ctx, "c")
	wantErr(t, "GetClient", err, nil)
	g, err := h.s.GetGrant(h.ctx, "g")
	wantErr(t, "GetGrant", err, nil)
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{
		{"client CreatedAt", c.CreatedAt, local},
		{"client LastUsedAt", c.LastUsedAt, local},
		{"client SecretExpiresAt", c.SecretExpiresAt, time.Time{}},
		{"grant CreatedAt", g.CreatedAt, local},
		{"grant ExpiresAt", g.ExpiresAt, local},
	} {
		if !tc.got.Equal(tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
		if tc.got.Location() != time.UTC {
			t.Errorf("%s is in %v, want UTC", tc.name, tc.got.Location())
		}
		if tc.want.IsZero() != tc.got.IsZero() {
			t.Errorf("%s: zero time not kept", tc.name)
		}
	}
}

// race runs fn in n goroutines released at once and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Go(func() {
			start.Wait()
			errs[i] = fn(i)
		})
	}
	start.Done()
	done.Wait()
	return errs
}

// oneWinner checks that exactly one error is nil and the others are
// ErrAlreadyUsed, and returns the winner's index.
func oneWinner(t *testing.T, what string, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("%s: goroutines %d and %d both succeeded", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrAlreadyUsed):
			t.Fatalf("%s: goroutine %d: got %v, want ErrAlreadyUsed", what, i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: nobody succeeded", what)
	}
	return winner
}

const takers = 12

func testConcurrentExchange(t *testing.T, h *harness) {
	h.client("c")
	g := h.grant("g", "c", "u", "")
	code := h.code(hashOf("code"), g)
	tok := func(i int) store.Token { return token(hashOf("t-"+strconv.Itoa(i)), store.AccessToken, g) }
	got := make([]store.AuthCode, takers)
	errs := race(takers, func(i int) error {
		var err error
		got[i], err = h.s.ExchangeAuthCode(h.ctx, code.CodeHash, []store.Token{tok(i)}, time.Time{})
		return err
	})
	winner := oneWinner(t, "ExchangeAuthCode", errs)
	for i := range takers {
		if got[i].CodeHash != code.CodeHash || got[i].UsedAt.IsZero() {
			t.Fatalf("taker %d got code %+v, want the used code", i, got[i])
		}
		_, err := h.s.GetToken(h.ctx, tok(i).Hash)
		if i == winner {
			wantErr(t, "the winner's token", err, nil)
		} else {
			wantErr(t, "a loser's token", err, store.ErrNotFound)
		}
	}
}

func testConcurrentConsume(t *testing.T, h *harness) {
	p := pending(hashOf("state"))
	wantErr(t, "CreatePendingAuthorization", h.s.CreatePendingAuthorization(h.ctx, p), nil)
	got := make([]store.PendingAuthorization, takers)
	errs := race(takers, func(i int) error {
		var err error
		got[i], err = h.s.ConsumePendingAuthorization(h.ctx, p.StateHash)
		return err
	})
	winner := oneWinner(t, "ConsumePendingAuthorization", errs)
	for i := range takers {
		if got[i].StateHash != p.StateHash || !got[i].UsedAt.Equal(got[winner].UsedAt) {
			t.Fatalf("taker %d got %+v, want the record the winner consumed", i, got[i])
		}
	}
}

func testConcurrentRotate(t *testing.T, h *harness) {
	h.client("c")
	g := h.grant("g", "c", "u", "")
	old := token(hashOf("r0"), store.RefreshToken, g)
	h.issue(g, old)
	tok := func(i int) store.Token { return token(hashOf("r-"+strconv.Itoa(i)), store.RefreshToken, g) }
	var calls sync.Map
	errs := race(takers, func(i int) error {
		got, err := h.s.RotateRefreshToken(h.ctx, old.Hash, []store.Token{tok(i)}, func(x *store.Grant) error {
			calls.Store(i, true)
			x.Permissions = []string{"by-" + strconv.Itoa(i)}
			return nil
		})
		if got.Hash != old.Hash {
			return errors.New("RotateRefreshToken did not return the old token")
		}
		return err
	})
	winner := oneWinner(t, "RotateRefreshToken", errs)
	for i := range takers {
		_, err := h.s.GetToken(h.ctx, tok(i).Hash)
		if i == winner {
			wantErr(t, "the winner's token", err, nil)
		} else {
			wantErr(t, "a loser's token", err, store.ErrNotFound)
		}
	}
	gr, _ := h.s.GetGrant(h.ctx, "g")
	sameStrings(t, "grant updated by the winner", gr.Permissions, []string{"by-" + strconv.Itoa(winner)})
}

// testConcurrentUpdateGrant hammers one grant with read-modify-write
// increments of a counter kept in Role: none may be lost.
func testConcurrentUpdateGrant(t *testing.T, h *harness) {
	h.client("c")
	h.grant("g", "c", "u", "", func(g *store.Grant) { g.Role = "0" })
	const workers, increments = 8, 100
	errs := race(workers, func(int) error {
		for range increments {
			_, err := h.s.UpdateGrant(h.ctx, "g", func(g *store.Grant) error {
				n, err := strconv.Atoi(g.Role)
				if err != nil {
					return err
				}
				g.Role = strconv.Itoa(n + 1)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	for i, err := range errs {
		wantErr(t, "UpdateGrant in worker "+strconv.Itoa(i), err, nil)
	}
	g, err := h.s.GetGrant(h.ctx, "g")
	wantErr(t, "GetGrant", err, nil)
	if g.Role != strconv.Itoa(workers*increments) {
		t.Fatalf("counter = %s after %d increments", g.Role, workers*increments)
	}
}

func testWatcher(t *testing.T, h *harness) {
	w, ok := h.s.(store.Watcher)
	if !ok {
		t.Skip("the store does not implement store.Watcher")
	}
	h.client("c1")
	h.client("c2")
	h.grant("g1", "c1", "u", "")
	g2 := h.grant("g2", "c1", "u", "")
	g3 := h.grant("g3", "c2", "u", "")
	tok := token(hashOf("t"), store.AccessToken, g2)
	h.issue(g2, tok)

	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	changes := make(chan store.Change, 1024)
	w.Watch(ctx, func(c store.Change) { changes <- c })
	expect := func(what string, want store.Change) {
		t.Helper()
		timeout := time.NewTimer(10 * time.Second)
		defer timeout.Stop()
		for {
			select {
			case c := <-changes:
				if c == want || c.Kind == store.ChangeUnknown {
					return
				}
			case <-timeout.C:
				t.Fatalf("%s: no %v announced within 10s", what, want)
			}
		}
	}

	_, err := h.s.UpdateGrant(h.ctx, "g1", func(g *store.Grant) error { g.Role = "x"; return nil })
	wantErr(t, "UpdateGrant", err, nil)
	expect("UpdateGrant", store.Change{Kind: store.ChangeGrantUpdated, ID: "g1"})
	wantErr(t, "DeleteToken", h.s.DeleteToken(h.ctx, tok.Hash), nil)
	expect("DeleteToken", store.Change{Kind: store.ChangeTokenDeleted, ID: tok.Hash})
	wantErr(t, "RevokeGrant", h.s.RevokeGrant(h.ctx, g3.ID), nil)
	expect("RevokeGrant", store.Change{Kind: store.ChangeGrantRevoked, ID: g3.ID})
	wantErr(t, "DeleteClient", h.s.DeleteClient(h.ctx, "c1"), nil)
	expect("DeleteClient", store.Change{Kind: store.ChangeClientDeleted, ID: "c1"})

	// After ctx is done, fn is no longer called.
	cancel()
	stopped := make(chan store.Change, 16)
	ctx2, cancel2 := context.WithCancel(h.ctx)
	defer cancel2()
	w.Watch(ctx2, func(c store.Change) { stopped <- c })
	h.client("c3")
	h.grant("g4", "c3", "u", "")
	_, err = h.s.UpdateGrant(h.ctx, "g4", func(g *store.Grant) error { return nil })
	wantErr(t, "UpdateGrant", err, nil)
	select {
	case c := <-stopped:
		if c != (store.Change{Kind: store.ChangeGrantUpdated, ID: "g4"}) && c.Kind != store.ChangeUnknown {
			t.Fatalf("second watcher got %v, want the g4 update", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second watcher got nothing within 10s")
	}
}

func testGarbageCollect(t *testing.T, h *harness) {
	forever := func(c *store.Client) { c.ExpiresAt = time.Time{} }
	h.client("c", forever)
	h.client("old-client", func(c *store.Client) { c.ExpiresAt = past() })
	h.grant("gone", "c", "u", "u@example.com", func(g *store.Grant) { g.ExpiresAt = past() })
	kept := h.grant("kept", "c", "u", "u@example.com", func(g *store.Grant) { g.ExpiresAt = time.Time{} })
	soon := h.grant("soon", "c", "u", "u@example.com") // expires in an hour
	tok := token(hashOf("t"), store.AccessToken, kept) // expires in an hour
	h.issue(kept, tok)
	wantErr(t, "KVPut", h.s.KVPut(h.ctx, "p", "k", []byte("v"), time.Hour), nil)

	wantErr(t, "GarbageCollect", h.s.GarbageCollect(h.ctx, time.Now()), nil)
	list, err := h.s.ListGrants(h.ctx, store.GrantFilter{UserID: "u"})
	wantErr(t, "ListGrants", err, nil)
	sameStrings(t, "ListGrants after GC", ids(list, grantID), []string{"kept", "soon"})
	got, err := h.s.GetGrant(h.ctx, "kept")
	wantErr(t, "GetGrant kept", err, nil)
	equal(t, "kept grant", got, kept)
	_, err = h.s.GetToken(h.ctx, tok.Hash)
	wantErr(t, "GetToken of a live token after GC", err, nil)
	clients, err := h.s.ListClients(h.ctx)
	wantErr(t, "ListClients", err, nil)
	sameStrings(t, "ListClients after GC", ids(clients, func(c store.Client) string { return c.ID }), []string{"c"})

	// GarbageCollect treats its now as the present: what expires before it goes.
	wantErr(t, "GarbageCollect in two hours", h.s.GarbageCollect(h.ctx, time.Now().Add(2*time.Hour)), nil)
	_, err = h.s.GetGrant(h.ctx, soon.ID)
	wantErr(t, "GetGrant of a grant collected early", err, store.ErrNotFound)
	_, err = h.s.KVGet(h.ctx, "p", "k")
	wantErr(t, "KVGet of a key collected early", err, store.ErrNotFound)
	_, err = h.s.GetToken(h.ctx, tok.Hash)
	wantErr(t, "GetToken of a token collected early", err, store.ErrNotFound)
	got, err = h.s.GetGrant(h.ctx, kept.ID)
	wantErr(t, "GetGrant of a grant that never expires", err, nil)
	equal(t, "kept grant after the second GC", got, kept)
	list, _ = h.s.ListGrants(h.ctx, store.GrantFilter{Email: "u@example.com"})
	sameStrings(t, "ListGrants after the second GC", ids(list, grantID), []string{"kept"})
}

func testClose(t *testing.T, h *harness) {
	h.client("c")
	wantErr(t, "Ping", h.s.Ping(h.ctx), nil)
	wantErr(t, "Close", h.s.Close(), nil)
	wantErr(t, "Close again", h.s.Close(), nil)
	s, ctx := h.s, h.ctx
	calls := map[string]func() error{
		"Ping":                        func() error { return s.Ping(ctx) },
		"CreateClient":                func() error { return s.CreateClient(ctx, store.Client{ID: "x"}) },
		"GetClient":                   func() error { _, err := s.GetClient(ctx, "c"); return err },
		"UpdateClient":                func() error { _, err := s.UpdateClient(ctx, "c", func(*store.Client) error { return nil }); return err },
		"DeleteClient":                func() error { return s.DeleteClient(ctx, "c") },
		"ListClients":                 func() error { _, err := s.ListClients(ctx); return err },
		"CreatePendingAuthorization":  func() error { return s.CreatePendingAuthorization(ctx, pending("x")) },
		"ConsumePendingAuthorization": func() error { _, err := s.ConsumePendingAuthorization(ctx, "x"); return err },
		"CreateAuthCode":              func() error { return s.CreateAuthCode(ctx, store.AuthCode{CodeHash: "x"}) },
		"ExchangeAuthCode":            func() error { _, err := s.ExchangeAuthCode(ctx, "x", nil, time.Time{}); return err },
		"CreateGrant":                 func() error { return s.CreateGrant(ctx, store.Grant{ID: "x", ClientID: "c"}) },
		"GetGrant":                    func() error { _, err := s.GetGrant(ctx, "x"); return err },
		"UpdateGrant":                 func() error { _, err := s.UpdateGrant(ctx, "x", func(*store.Grant) error { return nil }); return err },
		"ListGrants":                  func() error { _, err := s.ListGrants(ctx, store.GrantFilter{}); return err },
		"RevokeGrant":                 func() error { return s.RevokeGrant(ctx, "x") },
		"GetToken":                    func() error { _, err := s.GetToken(ctx, "x"); return err },
		"DeleteToken":                 func() error { return s.DeleteToken(ctx, "x") },
		"RotateRefreshToken":          func() error { _, err := s.RotateRefreshToken(ctx, "x", nil, nil); return err },
		"PutConsent":                  func() error { return s.PutConsent(ctx, store.Consent{UserID: "u", ClientID: "c"}) },
		"GetConsent":                  func() error { _, err := s.GetConsent(ctx, "u", "c"); return err },
		"DeleteConsent":               func() error { return s.DeleteConsent(ctx, "u", "c") },
		"ListConsents":                func() error { _, err := s.ListConsents(ctx, "u"); return err },
		"KVGet":                       func() error { _, err := s.KVGet(ctx, "p", "k"); return err },
		"KVPut":                       func() error { return s.KVPut(ctx, "p", "k", nil, 0) },
		"KVDelete":                    func() error { return s.KVDelete(ctx, "p", "k") },
		"KVList":                      func() error { _, err := s.KVList(ctx, "p", "", "", 0); return err },
		"AppendAudit":                 func() error { _, err := s.AppendAudit(ctx, store.AuditRecord{}); return err },
		"ListAudit":                   func() error { _, err := s.ListAudit(ctx, store.AuditQuery{}); return err },
		"GarbageCollect":              func() error { return s.GarbageCollect(ctx, time.Now()) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) { wantErr(t, name+" after Close", call(), store.ErrClosed) })
	}
}

func testReopen(t *testing.T, h *harness) {
	c := h.client("c")
	g := h.grant("g", "c", "u", "U@example.com")
	tok := token(hashOf("t"), store.RefreshToken, g)
	h.issue(g, tok)
	code := h.code(hashOf("code"), g)
	p := pending(hashOf("state"))
	wantErr(t, "CreatePendingAuthorization", h.s.CreatePendingAuthorization(h.ctx, p), nil)
	consent := store.Consent{UserID: "u", ClientID: "c", Scopes: []string{"mcp"}, CreatedAt: now()}
	wantErr(t, "PutConsent", h.s.PutConsent(h.ctx, consent), nil)
	wantErr(t, "KVPut", h.s.KVPut(h.ctx, "p", "k", []byte("v"), time.Hour), nil)
	a, err := h.s.AppendAudit(h.ctx, auditRecord("u", "add", now()))
	wantErr(t, "AppendAudit", err, nil)

	h.reopen()

	gotC, err := h.s.GetClient(h.ctx, "c")
	wantErr(t, "GetClient after reopen", err, nil)
	equal(t, "client after reopen", gotC, c)
	gotG, err := h.s.GetGrant(h.ctx, "g")
	wantErr(t, "GetGrant after reopen", err, nil)
	equal(t, "grant after reopen", gotG, g)
	list, _ := h.s.ListGrants(h.ctx, store.GrantFilter{Email: "u@EXAMPLE.com"})
	sameStrings(t, "ListGrants by e-mail after reopen", ids(list, grantID), []string{"g"})
	gotT, err := h.s.GetToken(h.ctx, tok.Hash)
	wantErr(t, "GetToken after reopen", err, nil)
	equal(t, "token after reopen", gotT, tok)
	gotN, err := h.s.GetConsent(h.ctx, "u", "c")
	wantErr(t, "GetConsent after reopen", err, nil)
	equal(t, "consent after reopen", gotN, consent)
	v, err := h.s.KVGet(h.ctx, "p", "k")
	wantErr(t, "KVGet after reopen", err, nil)
	if string(v) != "v" {
		t.Fatalf("KVGet after reopen = %q", v)
	}
	audit, err := h.s.ListAudit(h.ctx, store.AuditQuery{})
	wantErr(t, "ListAudit after reopen", err, nil)
	equal(t, "audit after reopen", audit, []store.AuditRecord{a})
	// Audit IDs keep growing across a reopen.
	b, err := h.s.AppendAudit(h.ctx, auditRecord("u", "add", now()))
	wantErr(t, "AppendAudit after reopen", err, nil)
	if b.ID <= a.ID {
		t.Fatalf("audit ID after reopen %q does not sort after %q", b.ID, a.ID)
	}
	// Single-use state survives too.
	if _, err := h.s.ExchangeAuthCode(h.ctx, code.CodeHash, nil, time.Time{}); err != nil {
		t.Fatalf("ExchangeAuthCode after reopen: %v", err)
	}
	_, err = h.s.ConsumePendingAuthorization(h.ctx, p.StateHash)
	wantErr(t, "ConsumePendingAuthorization after reopen", err, nil)
	h.reopen()
	_, err = h.s.ExchangeAuthCode(h.ctx, code.CodeHash, nil, time.Time{})
	wantErr(t, "ExchangeAuthCode used before a reopen", err, store.ErrAlreadyUsed)
	_, err = h.s.ConsumePendingAuthorization(h.ctx, p.StateHash)
	wantErr(t, "ConsumePendingAuthorization used before a reopen", err, store.ErrAlreadyUsed)
}
