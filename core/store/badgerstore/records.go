package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/toolgate/toolgate/core/store"
)

// ---- clients ----

// CreateClient implements store.Clients.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	if err := validID("client id", c.ID); err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	return s.update(ctx, "create client", func(txn *badger.Txn) ([]store.Change, error) {
		var old store.Client
		err := read(txn, key(prefixClient, c.ID), &old)
		switch {
		case err == nil && live(old.ExpiresAt, time.Now()):
			return nil, fmt.Errorf("client %q: %w", c.ID, store.ErrAlreadyExists)
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		return nil, write(txn, key(prefixClient, c.ID), c, c.ExpiresAt)
	})
}

// GetClient implements store.Clients.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	var c store.Client
	err := s.view(ctx, "get client", func(txn *badger.Txn) error {
		var err error
		c, err = liveClient(txn, id, time.Now())
		return err
	})
	return c, err
}

func liveClient(txn *badger.Txn, id string, now time.Time) (store.Client, error) {
	var c store.Client
	if err := validID("client id", id); err != nil {
		return c, err
	}
	if err := read(txn, key(prefixClient, id), &c); err != nil {
		return store.Client{}, fmt.Errorf("client %q: %w", id, err)
	}
	if !live(c.ExpiresAt, now) {
		return store.Client{}, fmt.Errorf("client %q: %w", id, store.ErrNotFound)
	}
	return c, nil
}

// UpdateClient implements store.Clients. fn may not change the ID.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(*store.Client) error) (store.Client, error) {
	var out store.Client
	err := s.update(ctx, "update client", func(txn *badger.Txn) ([]store.Change, error) {
		c, err := liveClient(txn, id, time.Now())
		if err != nil {
			return nil, err
		}
		if err := fn(&c); err != nil {
			return nil, err
		}
		if c.ID != id {
			return nil, fmt.Errorf("%w: update changed the client id", store.ErrInvalid)
		}
		out = c
		return nil, write(txn, key(prefixClient, id), c, c.ExpiresAt)
	})
	if err != nil {
		return store.Client{}, err
	}
	return out, nil
}

// DeleteClient implements store.Clients: the client, its grants and their
// tokens go in one transaction. ErrNotFound if there is no live client. A
// client with more grants and tokens than fit one transaction (about 15% of
// MemTableSize: a few thousand tokens with the defaults) fails with a
// wrapped badger.ErrTxnTooBig and changes nothing; RevokeGrant its grants
// first.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	del := func(withTokens bool) func(txn *badger.Txn) ([]store.Change, error) {
		return func(txn *badger.Txn) ([]store.Change, error) {
			if _, err := liveClient(txn, id, time.Now()); err != nil {
				return nil, err
			}
			return deleteClient(txn, id, withTokens)
		}
	}
	err := s.update(ctx, "delete client", del(true))
	if !errors.Is(err, badger.ErrTxnTooBig) {
		return err
	}
	// Too many tokens for one transaction: remove the client and its grants
	// atomically (their tokens are invisible from then on, see GetToken),
	// then the tokens in batches.
	var grants []string
	err = s.update(ctx, "delete client", func(txn *badger.Txn) ([]store.Change, error) {
		changes, err := del(false)(txn)
		grants = grants[:0]
		for _, c := range changes {
			if c.Kind == store.ChangeGrantRevoked {
				grants = append(grants, c.ID)
			}
		}
		return changes, err
	})
	if err != nil {
		return err
	}
	s.purgeTokens(ctx, grants...)
	return nil
}

// deleteClient removes a client and every grant indexed under it (with
// their tokens if withTokens), and returns the changes to announce.
func deleteClient(txn *badger.Txn, id string, withTokens bool) ([]store.Change, error) {
	changes := []store.Change{{Kind: store.ChangeClientDeleted, ID: id}}
	for _, k := range keysWithPrefix(txn, key(prefixGrantByClient, id, sep)) {
		gid := string(k[len(prefixGrantByClient)+len(id)+len(sep)+8:])
		if err := deleteGrant(txn, gid, withTokens); err != nil {
			return nil, err
		}
		if err := del(txn, k); err != nil { // stale index entry whose grant was gone
			return nil, err
		}
		changes = append(changes, store.Change{Kind: store.ChangeGrantRevoked, ID: gid})
	}
	return changes, del(txn, key(prefixClient, id))
}

// tokenBatch bounds the token deletions of one transaction of purgeTokens.
const tokenBatch = 1000

// purgeTokens deletes, in batches, the tokens of grants that are already
// gone. A failure only leaves invisible tokens behind, which
// GarbageCollect removes, so it is logged rather than returned.
func (s *Store) purgeTokens(ctx context.Context, grantIDs ...string) {
	for _, gid := range grantIDs {
		for {
			n := 0
			err := s.update(ctx, "purge tokens", func(txn *badger.Txn) ([]store.Change, error) {
				var err error
				n, err = deleteGrantTokens(txn, gid, tokenBatch)
				return nil, err
			})
			if err != nil {
				s.log.Warn("store: tokens of a deleted grant left for garbage collection", "grant", gid, "err", err)
				break
			}
			if n < tokenBatch {
				break
			}
		}
	}
}

// ListClients implements store.Clients.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	var out []store.Client
	err := s.view(ctx, "list clients", func(txn *badger.Txn) error {
		now := time.Now()
		return each(txn, key(prefixClient), func(_ []byte, c store.Client) (bool, error) {
			if live(c.ExpiresAt, now) {
				out = append(out, c)
			}
			return true, nil
		})
	})
	return out, err
}

// ---- pending authorizations ----

// CreatePendingAuthorization implements store.PendingAuthorizations.
func (s *Store) CreatePendingAuthorization(ctx context.Context, p store.PendingAuthorization) error {
	if err := validID("state hash", p.StateHash); err != nil {
		return fmt.Errorf("create pending authorization: %w", err)
	}
	return s.update(ctx, "create pending authorization", func(txn *badger.Txn) ([]store.Change, error) {
		var old store.PendingAuthorization
		err := read(txn, key(prefixPending, p.StateHash), &old)
		switch {
		case err == nil && live(old.ExpiresAt, time.Now()):
			return nil, store.ErrAlreadyExists
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		return nil, write(txn, key(prefixPending, p.StateHash), p, p.ExpiresAt)
	})
}

// ConsumePendingAuthorization implements store.PendingAuthorizations. The
// consumed record stays stored, marked, until it expires.
func (s *Store) ConsumePendingAuthorization(ctx context.Context, stateHash string) (store.PendingAuthorization, error) {
	var out store.PendingAuthorization
	err := s.update(ctx, "consume pending authorization", func(txn *badger.Txn) ([]store.Change, error) {
		if err := validID("state hash", stateHash); err != nil {
			return nil, err
		}
		var p store.PendingAuthorization
		if err := read(txn, key(prefixPending, stateHash), &p); err != nil {
			return nil, err
		}
		now := time.Now()
		if !live(p.ExpiresAt, now) {
			return nil, store.ErrNotFound
		}
		out = p
		if !p.UsedAt.IsZero() {
			return nil, store.ErrAlreadyUsed
		}
		p.UsedAt = now.UTC()
		out = p
		return nil, write(txn, key(prefixPending, stateHash), p, p.ExpiresAt)
	})
	if err != nil && !errors.Is(err, store.ErrAlreadyUsed) {
		return store.PendingAuthorization{}, err
	}
	return out, err
}

// ---- authorization codes ----

// CreateAuthCode implements store.AuthCodes.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	if err := validID("code hash", c.CodeHash); err != nil {
		return fmt.Errorf("create auth code: %w", err)
	}
	return s.update(ctx, "create auth code", func(txn *badger.Txn) ([]store.Change, error) {
		var old store.AuthCode
		err := read(txn, key(prefixCode, c.CodeHash), &old)
		switch {
		case err == nil && live(old.ExpiresAt, time.Now()):
			return nil, store.ErrAlreadyExists
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		return nil, write(txn, key(prefixCode, c.CodeHash), c, c.ExpiresAt)
	})
}

// ExchangeAuthCode implements store.AuthCodes. Every issued token must name
// a live grant (ErrNotFound otherwise) and a hash no live token has
// (ErrAlreadyExists otherwise); either failure changes nothing. The grant
// is extended (see store.AuthCodes) before the tokens are checked against
// it, and without an announcement.
func (s *Store) ExchangeAuthCode(ctx context.Context, codeHash string, issue []store.Token, grantExpiresAt time.Time) (store.AuthCode, error) {
	var out store.AuthCode
	err := s.update(ctx, "exchange auth code", func(txn *badger.Txn) ([]store.Change, error) {
		if err := validID("code hash", codeHash); err != nil {
			return nil, err
		}
		var c store.AuthCode
		if err := read(txn, key(prefixCode, codeHash), &c); err != nil {
			return nil, err
		}
		now := time.Now()
		if !live(c.ExpiresAt, now) {
			return nil, store.ErrNotFound
		}
		out = c
		if !c.UsedAt.IsZero() {
			return nil, store.ErrAlreadyUsed
		}
		c.UsedAt = now.UTC()
		out = c
		if err := write(txn, key(prefixCode, codeHash), c, c.ExpiresAt); err != nil {
			return nil, err
		}
		if !grantExpiresAt.IsZero() {
			if _, err := updateGrant(txn, c.GrantID, store.ExtendGrant(grantExpiresAt), now); err != nil {
				return nil, err
			}
		}
		return nil, issueTokens(txn, issue, now)
	})
	if err != nil && !errors.Is(err, store.ErrAlreadyUsed) {
		return store.AuthCode{}, err
	}
	return out, err
}

// ---- grants ----

// CreateGrant implements store.Grants.
func (s *Store) CreateGrant(ctx context.Context, g store.Grant) error {
	if err := validGrant(g); err != nil {
		return fmt.Errorf("create grant: %w", err)
	}
	return s.update(ctx, "create grant", func(txn *badger.Txn) ([]store.Change, error) {
		now := time.Now()
		var old store.Grant
		err := read(txn, key(prefixGrant, g.ID), &old)
		switch {
		case err == nil && live(old.ExpiresAt, now):
			return nil, fmt.Errorf("grant %q: %w", g.ID, store.ErrAlreadyExists)
		case err == nil: // an expired grant not yet collected: remove it and its tokens
			if err := deleteGrant(txn, g.ID, true); err != nil {
				return nil, err
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		if _, err := liveClient(txn, g.ClientID, now); err != nil {
			return nil, err
		}
		return nil, writeGrant(txn, g)
	})
}

func validGrant(g store.Grant) error {
	return errors.Join(
		validID("grant id", g.ID),
		validID("client id", g.ClientID),
		validKeyPart("user id", g.UserID),
		validKeyPart("email", g.Email),
	)
}

// writeGrant stores g and its index entries (which expire with it).
func writeGrant(txn *badger.Txn, g store.Grant) error {
	if err := write(txn, key(prefixGrant, g.ID), g, g.ExpiresAt); err != nil {
		return err
	}
	for _, k := range grantIndexKeys(g) {
		if err := setEntry(txn, k, nil, g.ExpiresAt); err != nil {
			return err
		}
	}
	return nil
}

// deleteGrant removes the grant id (if stored, live or not), its index
// entries and, if withTokens, every token indexed under it.
func deleteGrant(txn *badger.Txn, id string, withTokens bool) error {
	var g store.Grant
	switch err := read(txn, key(prefixGrant, id), &g); {
	case err == nil:
		for _, k := range grantIndexKeys(g) {
			if err := del(txn, k); err != nil {
				return err
			}
		}
		if err := del(txn, key(prefixGrant, id)); err != nil {
			return err
		}
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	if withTokens {
		_, err := deleteGrantTokens(txn, id, 0)
		return err
	}
	return nil
}

// deleteGrantTokens deletes up to limit (0: all) tokens indexed under the
// grant id and returns how many it deleted.
func deleteGrantTokens(txn *badger.Txn, id string, limit int) (int, error) {
	prefix := key(prefixTokenByGrant, id, sep)
	keys := keysWithPrefix(txn, prefix)
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	for _, k := range keys {
		if err := del(txn, key(prefixToken, string(k[len(prefix):]))); err != nil {
			return 0, err
		}
		if err := del(txn, k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

func liveGrant(txn *badger.Txn, id string, now time.Time) (store.Grant, error) {
	var g store.Grant
	if err := validID("grant id", id); err != nil {
		return g, err
	}
	if err := read(txn, key(prefixGrant, id), &g); err != nil {
		return store.Grant{}, fmt.Errorf("grant %q: %w", id, err)
	}
	if !live(g.ExpiresAt, now) {
		return store.Grant{}, fmt.Errorf("grant %q: %w", id, store.ErrNotFound)
	}
	return g, nil
}

// GetGrant implements store.Grants.
func (s *Store) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	var g store.Grant
	err := s.view(ctx, "get grant", func(txn *badger.Txn) error {
		var err error
		g, err = liveGrant(txn, id, time.Now())
		return err
	})
	return g, err
}

// UpdateGrant implements store.Grants. fn may not change the ID; if it
// changes the client, the new client must exist.
func (s *Store) UpdateGrant(ctx context.Context, id string, fn func(*store.Grant) error) (store.Grant, error) {
	var out store.Grant
	err := s.update(ctx, "update grant", func(txn *badger.Txn) ([]store.Change, error) {
		g, err := updateGrant(txn, id, fn, time.Now())
		out = g
		return []store.Change{{Kind: store.ChangeGrantUpdated, ID: id}}, err
	})
	if err != nil {
		return store.Grant{}, err
	}
	return out, nil
}

// updateGrant applies fn to the live grant id and rewrites it and its indexes.
func updateGrant(txn *badger.Txn, id string, fn func(*store.Grant) error, now time.Time) (store.Grant, error) {
	old, err := liveGrant(txn, id, now)
	if err != nil {
		return store.Grant{}, err
	}
	g := old
	g.Permissions = slices.Clone(old.Permissions)
	g.Scopes = slices.Clone(old.Scopes)
	g.UpstreamRefreshToken = slices.Clone(old.UpstreamRefreshToken)
	if err := fn(&g); err != nil {
		return store.Grant{}, err
	}
	if g.ID != id {
		return store.Grant{}, fmt.Errorf("%w: update changed the grant id", store.ErrInvalid)
	}
	if err := validGrant(g); err != nil {
		return store.Grant{}, err
	}
	if g.ClientID != old.ClientID {
		if _, err := liveClient(txn, g.ClientID, now); err != nil {
			return store.Grant{}, err
		}
	}
	for _, k := range grantIndexKeys(old) {
		if err := del(txn, k); err != nil {
			return store.Grant{}, err
		}
	}
	return g, writeGrant(txn, g)
}

// ListGrants implements store.Grants. It walks the most selective index the
// filter allows (client, then user, then e-mail), or every grant.
func (s *Store) ListGrants(ctx context.Context, f store.GrantFilter) ([]store.Grant, error) {
	var out []store.Grant
	err := s.view(ctx, "list grants", func(txn *badger.Txn) error {
		now := time.Now()
		match := func(g store.Grant) bool {
			return live(g.ExpiresAt, now) &&
				(f.UserID == "" || g.UserID == f.UserID) &&
				(f.ClientID == "" || g.ClientID == f.ClientID) &&
				(f.Email == "" || strings.EqualFold(g.Email, f.Email))
		}
		var prefix []byte
		switch {
		case f.ClientID != "":
			prefix = key(prefixGrantByClient, f.ClientID, sep)
		case f.UserID != "":
			prefix = key(prefixGrantByUser, f.UserID, sep)
		case f.Email != "":
			prefix = key(prefixGrantByEmail, strings.ToLower(f.Email), sep)
		default:
			return each(txn, key(prefixGrant), func(_ []byte, g store.Grant) (bool, error) {
				if match(g) {
					out = append(out, g)
				}
				return true, nil
			})
		}
		if err := errors.Join(validKeyPart("client id", f.ClientID), validKeyPart("user id", f.UserID), validKeyPart("email", f.Email)); err != nil {
			return err
		}
		for _, k := range keysWithPrefix(txn, prefix) {
			var g store.Grant
			err := read(txn, key(prefixGrant, string(k[len(prefix)+8:])), &g)
			if errors.Is(err, store.ErrNotFound) {
				continue // index entry outlived its grant; GarbageCollect removes it
			}
			if err != nil {
				return err
			}
			if match(g) {
				out = append(out, g)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b store.Grant) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// RevokeGrant implements store.Grants.
// A grant with more tokens than fit one transaction is deleted first and
// its tokens (invisible from then on, see GetToken) in batches after.
func (s *Store) RevokeGrant(ctx context.Context, id string) error {
	revoke := func(withTokens bool) func(txn *badger.Txn) ([]store.Change, error) {
		return func(txn *badger.Txn) ([]store.Change, error) {
			if _, err := liveGrant(txn, id, time.Now()); err != nil {
				return nil, err
			}
			return []store.Change{{Kind: store.ChangeGrantRevoked, ID: id}}, deleteGrant(txn, id, withTokens)
		}
	}
	err := s.update(ctx, "revoke grant", revoke(true))
	if !errors.Is(err, badger.ErrTxnTooBig) {
		return err
	}
	if err := s.update(ctx, "revoke grant", revoke(false)); err != nil {
		return err
	}
	s.purgeTokens(ctx, id)
	return nil
}

// ---- tokens ----

// issueTokens stores new tokens, each under a live grant and a free hash.
func issueTokens(txn *badger.Txn, issue []store.Token, now time.Time) error {
	for _, t := range issue {
		if err := validID("token hash", t.Hash); err != nil {
			return err
		}
		if t.Kind != store.AccessToken && t.Kind != store.RefreshToken {
			return fmt.Errorf("%w: token kind %q", store.ErrInvalid, t.Kind)
		}
		if _, err := liveGrant(txn, t.GrantID, now); err != nil {
			return fmt.Errorf("issue token: %w", err)
		}
		var old store.Token
		switch err := read(txn, key(prefixToken, t.Hash), &old); {
		case err == nil && live(old.ExpiresAt, now):
			return fmt.Errorf("issue token: %w", store.ErrAlreadyExists)
		case err == nil:
			if err := del(txn, tokenByGrantKey(old.GrantID, old.Hash)); err != nil {
				return err
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := write(txn, key(prefixToken, t.Hash), t, t.ExpiresAt); err != nil {
			return err
		}
		if err := setEntry(txn, tokenByGrantKey(t.GrantID, t.Hash), nil, t.ExpiresAt); err != nil {
			return err
		}
	}
	return nil
}

// liveToken returns the token hash if it and its grant are live.
func liveToken(txn *badger.Txn, hash string, now time.Time) (store.Token, error) {
	var t store.Token
	if err := validID("token hash", hash); err != nil {
		return t, err
	}
	if err := read(txn, key(prefixToken, hash), &t); err != nil {
		return store.Token{}, fmt.Errorf("token: %w", err)
	}
	if !live(t.ExpiresAt, now) {
		return store.Token{}, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if _, err := liveGrant(txn, t.GrantID, now); err != nil {
		return store.Token{}, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// GetToken implements store.Tokens. A token whose grant is gone or expired
// counts as gone too, so a revoked grant's tokens vanish in the same
// instant as the grant however they are removed.
func (s *Store) GetToken(ctx context.Context, hash string) (store.Token, error) {
	var t store.Token
	err := s.view(ctx, "get token", func(txn *badger.Txn) error {
		var err error
		t, err = liveToken(txn, hash, time.Now())
		return err
	})
	return t, err
}

// DeleteToken implements store.Tokens. ErrNotFound if there is no live token.
func (s *Store) DeleteToken(ctx context.Context, hash string) error {
	return s.update(ctx, "delete token", func(txn *badger.Txn) ([]store.Change, error) {
		t, err := liveToken(txn, hash, time.Now())
		if err != nil {
			return nil, err
		}
		if err := del(txn, tokenByGrantKey(t.GrantID, hash)); err != nil {
			return nil, err
		}
		return []store.Change{{Kind: store.ChangeTokenDeleted, ID: hash}}, del(txn, key(prefixToken, hash))
	})
}

// RotateRefreshToken implements store.Tokens. oldHash must be a refresh
// token (ErrInvalid otherwise) whose grant is live (ErrNotFound otherwise).
// On success it returns the old token, now marked used.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, issue []store.Token, updateGrantFn func(*store.Grant) error) (store.Token, error) {
	var out store.Token
	err := s.update(ctx, "rotate refresh token", func(txn *badger.Txn) ([]store.Change, error) {
		now := time.Now()
		t, err := liveToken(txn, oldHash, now)
		if err != nil {
			return nil, err
		}
		if t.Kind != store.RefreshToken {
			return nil, fmt.Errorf("%w: token is a %s token, not a refresh token", store.ErrInvalid, t.Kind)
		}
		out = t
		if !t.UsedAt.IsZero() {
			return nil, store.ErrAlreadyUsed
		}
		t.UsedAt = now.UTC()
		out = t
		if err := write(txn, key(prefixToken, oldHash), t, t.ExpiresAt); err != nil {
			return nil, err
		}
		var changes []store.Change
		if updateGrantFn != nil {
			if _, err := updateGrant(txn, t.GrantID, updateGrantFn, now); err != nil {
				return nil, err
			}
			changes = append(changes, store.Change{Kind: store.ChangeGrantUpdated, ID: t.GrantID})
		} else if _, err := liveGrant(txn, t.GrantID, now); err != nil {
			return nil, err
		}
		return changes, issueTokens(txn, issue, now)
	})
	if err != nil && !errors.Is(err, store.ErrAlreadyUsed) {
		return store.Token{}, err
	}
	return out, err
}

// ---- consents ----

// PutConsent implements store.Consents: it creates or replaces the consent.
func (s *Store) PutConsent(ctx context.Context, c store.Consent) error {
	if err := errors.Join(validID("user id", c.UserID), validID("client id", c.ClientID)); err != nil {
		return fmt.Errorf("put consent: %w", err)
	}
	return s.update(ctx, "put consent", func(txn *badger.Txn) ([]store.Change, error) {
		return nil, write(txn, consentKey(c.UserID, c.ClientID), c, c.ExpiresAt)
	})
}

// GetConsent implements store.Consents.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (store.Consent, error) {
	var c store.Consent
	err := s.view(ctx, "get consent", func(txn *badger.Txn) error {
		if err := errors.Join(validID("user id", userID), validID("client id", clientID)); err != nil {
			return err
		}
		if err := read(txn, consentKey(userID, clientID), &c); err != nil {
			return err
		}
		if !live(c.ExpiresAt, time.Now()) {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return store.Consent{}, err
	}
	return c, nil
}

// DeleteConsent implements store.Consents. ErrNotFound if there is no live consent.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return s.update(ctx, "delete consent", func(txn *badger.Txn) ([]store.Change, error) {
		if err := errors.Join(validID("user id", userID), validID("client id", clientID)); err != nil {
			return nil, err
		}
		var c store.Consent
		if err := read(txn, consentKey(userID, clientID), &c); err != nil {
			return nil, err
		}
		if !live(c.ExpiresAt, time.Now()) {
			return nil, store.ErrNotFound
		}
		return nil, del(txn, consentKey(userID, clientID))
	})
}

// ListConsents implements store.Consents, ordered by client ID.
func (s *Store) ListConsents(ctx context.Context, userID string) ([]store.Consent, error) {
	var out []store.Consent
	err := s.view(ctx, "list consents", func(txn *badger.Txn) error {
		if err := validID("user id", userID); err != nil {
			return err
		}
		now := time.Now()
		return each(txn, key(prefixConsent, userID, sep), func(_ []byte, c store.Consent) (bool, error) {
			if live(c.ExpiresAt, now) {
				out = append(out, c)
			}
			return true, nil
		})
	})
	return out, err
}
