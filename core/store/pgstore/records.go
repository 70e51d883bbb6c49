package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/toolgate/toolgate/core/store"
)

// The statements of the hottest reads, built once.
var (
	sqlGetToken = `SELECT t.data, t.used_at FROM tokens t JOIN grants g ON g.id = t.grant_id
WHERE t.hash = $1 AND ` + live("t.", 2) + ` AND ` + live("g.", 2)
	sqlGetGrant = `SELECT data FROM grants WHERE id = $1 AND ` + live("", 2)
)

// now is the present as the store records it: UTC at the microsecond
// precision of timestamptz, so a time handed back equals the one stored.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// ---- clients ----

// CreateClient implements store.Clients. An expired client with the same
// ID is replaced (its grants stay, as in badgerstore).
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	if err := validID("client id", c.ID); err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	data, err := encode(c)
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	return s.do(ctx, "create client", func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, `INSERT INTO clients (id, expires_at, data) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at, data = EXCLUDED.data
WHERE clients.expires_at IS NOT NULL AND clients.expires_at <= $4`, c.ID, nullTime(c.ExpiresAt), data, now())
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("client %q: %w", c.ID, store.ErrAlreadyExists)
		}
		return err
	})
}

// GetClient implements store.Clients.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	var c store.Client
	if err := validID("client id", id); err != nil {
		return c, fmt.Errorf("get client: %w", err)
	}
	err := s.do(ctx, "get client", func(ctx context.Context) error {
		var data []byte
		if err := s.pool.QueryRow(ctx, `SELECT data FROM clients WHERE id = $1 AND `+live("", 2), id, now()).Scan(&data); err != nil {
			return fmt.Errorf("client %q: %w", id, err)
		}
		return decode(data, &c)
	})
	if err != nil {
		return store.Client{}, err
	}
	return c, nil
}

// UpdateClient implements store.Clients. fn may not change the ID.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(*store.Client) error) (store.Client, error) {
	var out store.Client
	if err := validID("client id", id); err != nil {
		return out, fmt.Errorf("update client: %w", err)
	}
	err := s.tx(ctx, "update client", func(ctx context.Context, tx pgx.Tx) ([]store.Change, error) {
		var data []byte
		if err := tx.QueryRow(ctx, `SELECT data FROM clients WHERE id = $1 AND `+live("", 2)+` FOR UPDATE`, id, now()).Scan(&data); err != nil {
			return nil, fmt.Errorf("client %q: %w", id, err)
		}
		var c store.Client
		if err := decode(data, &c); err != nil {
			return nil, err
		}
		if err := fn(&c); err != nil {
			return nil, err
		}
		if c.ID != id {
			return nil, fmt.Errorf("%w: update changed the client id", store.ErrInvalid)
		}
		data, err := encode(c)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `UPDATE clients SET expires_at = $2, data = $3 WHERE id = $1`, id, nullTime(c.ExpiresAt), data); err != nil {
			return nil, err
		}
		out = c
		return nil, nil
	})
	if err != nil {
		return store.Client{}, err
	}
	return out, nil
}

// DeleteClient implements store.Clients: the client, its grants and their
// tokens go in one transaction. ErrNotFound if there is no live client.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if err := validID("client id", id); err != nil {
		return fmt.Errorf("delete client: %w", err)
	}
	return s.tx(ctx, "delete client", func(ctx context.Context, tx pgx.Tx) ([]store.Change, error) {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM clients WHERE id = $1 AND `+live("", 2)+` FOR UPDATE`, id, now()).Scan(&one); err != nil {
			return nil, fmt.Errorf("client %q: %w", id, err)
		}
		rows, err := tx.Query(ctx, `DELETE FROM grants WHERE client_id = $1 RETURNING id`, id)
		if err != nil {
			return nil, err
		}
		grants, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id); err != nil {
			return nil, err
		}
		changes := []store.Change{{Kind: store.ChangeClientDeleted, ID: id}}
		for _, g := range grants {
			changes = append(changes, store.Change{Kind: store.ChangeGrantRevoked, ID: g})
		}
		return changes, nil
	})
}

// ListClients implements store.Clients.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	var out []store.Client
	err := s.do(ctx, "list clients", func(ctx context.Context) error {
		var err error
		out, err = queryRecords[store.Client](ctx, s.pool, `SELECT data FROM clients WHERE `+live("", 1)+` ORDER BY id`, now())
		return err
	})
	return out, err
}

// querier is what pool and transaction have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// queryRecords decodes the single data column of every row.
func queryRecords[T any](ctx context.Context, q querier, sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) {
		var data []byte
		var v T
		if err := row.Scan(&data); err != nil {
			return v, err
		}
		return v, decode(data, &v)
	})
}

// ---- pending authorizations ----

// CreatePendingAuthorization implements store.PendingAuthorizations.
func (s *Store) CreatePendingAuthorization(ctx context.Context, p store.PendingAuthorization) error {
	if err := validID("state hash", p.StateHash); err != nil {
		return fmt.Errorf("create pending authorization: %w", err)
	}
	data, err := encode(p)
	if err != nil {
		return fmt.Errorf("create pending authorization: %w", err)
	}
	return s.do(ctx, "create pending authorization", func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, `INSERT INTO pending_authorizations (state_hash, used_at, expires_at, data) VALUES ($1, $2, $3, $4)
ON CONFLICT (state_hash) DO UPDATE SET used_at = EXCLUDED.used_at, expires_at = EXCLUDED.expires_at, data = EXCLUDED.data
WHERE pending_authorizations.expires_at IS NOT NULL AND pending_authorizations.expires_at <= $5`,
			p.StateHash, nullTime(p.UsedAt), nullTime(p.ExpiresAt), data, now())
		if err == nil && tag.RowsAffected() == 0 {
			return store.ErrAlreadyExists
		}
		return err
	})
}

// ConsumePendingAuthorization implements store.PendingAuthorizations. The
// consumed record stays stored, marked, until it expires.
func (s *Store) ConsumePendingAuthorization(ctx context.Context, stateHash string) (store.PendingAuthorization, error) {
	var out store.PendingAuthorization
	if err := validID("state hash", stateHash); err != nil {
		return out, fmt.Errorf("consume pending authorization: %w", err)
	}
	err := s.do(ctx, "consume pending authorization", func(ctx context.Context) error {
		var err error
		out, err = consume[store.PendingAuthorization](ctx, s.pool, "pending_authorizations", "state_hash", stateHash, now(),
			func(p *store.PendingAuthorization, usedAt time.Time) { p.UsedAt = usedAt })
		return err
	})
	if err != nil && !errors.Is(err, store.ErrAlreadyUsed) {
		return store.PendingAuthorization{}, err
	}
	return out, err
}

// consume marks the live row key of table used at now, exactly once: the
// conditional UPDATE lets one caller through, and every later one finds
// used_at set and gets the record with ErrAlreadyUsed.
func consume[T any](ctx context.Context, q querier, table, keyCol, key string, now time.Time, setUsed func(*T, time.Time)) (T, error) {
	var v T
	var data []byte
	var usedAt *time.Time
	err := q.QueryRow(ctx, `UPDATE `+table+` SET used_at = $2 WHERE `+keyCol+` = $1 AND used_at IS NULL AND `+live("", 2)+` RETURNING data, used_at`,
		key, now).Scan(&data, &usedAt)
	used := false
	if errors.Is(err, pgx.ErrNoRows) {
		used = true
		err = q.QueryRow(ctx, `SELECT data, used_at FROM `+table+` WHERE `+keyCol+` = $1 AND `+live("", 2), key, now).Scan(&data, &usedAt)
	}
	if err != nil {
		return v, err
	}
	if err := decode(data, &v); err != nil {
		return v, err
	}
	setUsed(&v, fromNull(usedAt))
	if used {
		if usedAt == nil { // a concurrent consumer rolled back after we looked
			return v, errors.New("record changed concurrently; try again")
		}
		return v, store.ErrAlreadyUsed
	}
	return v, nil
}

// ---- authorization codes ----

// CreateAuthCode implements store.AuthCodes.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	if err := validID("code hash", c.CodeHash); err != nil {
		return fmt.Errorf("create auth code: %w", err)
	}
	data, err := encode(c)
	if err != nil {
		return fmt.Errorf("create auth code: %w", err)
	}
	return s.do(ctx, "create auth code", func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, `INSERT INTO auth_codes (code_hash, used_at, expires_at, data) VALUES ($1, $2, $3, $4)
ON CONFLICT (code_hash) DO UPDATE SET used_at = EXCLUDED.used_at, expires_at = EXCLUDED.expires_at, data = EXCLUDED.data
WHERE auth_codes.expires_at IS NOT NULL AND auth_codes.expires_at <= $5`,
			c.CodeHash, nullTime(c.UsedAt), nullTime(c.ExpiresAt), data, now())
		if err == nil && tag.RowsAffected() == 0 {
			return store.ErrAlreadyExists
		}
		return err
	})
}

// ExchangeAuthCode implements store.AuthCodes. Every issued token must name
// a live grant (ErrNotFound otherwise) and a hash no live token has
// (ErrAlreadyExists otherwise); either failure changes nothing. The grant
// is extended (see store.AuthCodes) in the same transaction, before the
// tokens are checked against it, and without an announcement.
func (s *Store) ExchangeAuthCode(ctx context.Context, codeHash string, issue []store.Token, grantExpiresAt time.Time) (store.AuthCode, error) {
	var out store.AuthCode
	if err := validID("code hash", codeHash); err != nil {
		return out, fmt.Errorf("exchange auth code: %w", err)
	}
	if err := validTokens(issue); err != nil {
		return out, fmt.Errorf("exchange auth code: %w", err)
	}
	err := s.tx(ctx, "exchange auth code", func(ctx context.Context, tx pgx.Tx) ([]store.Change, error) {
		t := now()
		var err error
		out, err = consume[store.AuthCode](ctx, tx, "auth_codes", "code_hash", codeHash, t,
			func(c *store.AuthCode, usedAt time.Time) { c.UsedAt = usedAt })
		if err != nil {
			return nil, err
		}
		if !grantExpiresAt.IsZero() {
			if _, err := updateGrant(ctx, tx, out.GrantID, store.ExtendGrant(grantExpiresAt), t); err != nil {
				return nil, err
			}
		}
		return nil, issueTokens(ctx, tx, issue, t)
	})
	if err != nil && !errors.Is(err, store.ErrAlreadyUsed) {
		return store.AuthCode{}, err
	}
	return out, err
}

// ---- grants ----

func validGrant(g store.Grant) error {
	return errors.Join(
		validID("grant id", g.ID),
		validID("client id", g.ClientID),
		validKeyPart("user id", g.UserID),
		validKeyPart("email", g.Email),
	)
}

// CreateGrant implements store.Grants. An expired grant with the same ID
// is removed first, with its tokens.
func (s *Store) CreateGrant(ctx context.Context, g store.Grant) error {
	if err := validGrant(g); err != nil {
		return fmt.Errorf("create grant: %w", err)
	}
	data, err := encode(g)
	if err != nil {
		return fmt.Errorf("create grant: %w", err)
	}
	return s.tx(ctx, "create grant", func(ctx context.Context, tx pgx.Tx) ([]store.Change, error) {
		t := now()
		if _, err := tx.Exec(ctx, `DELETE FROM grants WHERE id = $1 AND expires_at <= $2`, g.ID, t); err != nil {
			return nil, err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO grants (id, client_id, user_id, email_lower, created_at, expires_at, data)
SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM clients c WHERE c.id = $2 AND `+live("c.", 8)+`)`,
			g.ID, g.ClientID, g.UserID, strings.ToLower(g.Email), g.CreatedAt.UTC(), nullTime(g.ExpiresAt), data, t)
		if err != nil {
			return nil, fmt.Errorf("grant %q: %w", g.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return nil, fmt.Errorf("client %q: %w", g.ClientID, store.ErrNotFound)
		}
		return nil, nil
	})
}

// GetGrant implements store.Grants.
func (s *Store) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	var g store.Grant
	if err := validID("grant id", id); err != nil {
		return g, fmt.Errorf("get grant: %w", err)
	}
	err := s.do(ctx, "get grant", func(ctx context.Context) error {
		var data []byte
		if err := s.pool.QueryRow(ctx, sqlGetGrant, id, now()).Scan(&data); err != nil {
			return fmt.Errorf("grant %q: %w", id, err)
		}
		return decode(data, &g)
	})
	if err != nil {
		return store.Grant{}, err
	}
	return g, nil
}

// UpdateGrant implements store.Grants. fn may not change the ID; if it
// changes the client, the new client must be live.
func (s *Store) UpdateGrant(ctx context.Context, id string, fn func(*store.Grant) error) (store.Grant, error) {
	var out store.Grant
	if err := validID("grant id", id); err != nil {
		return out, fmt.Errorf("update grant: %w", err)
	}
	err := s.tx(ctx, "update grant", func(ctx context.Context, tx pgx.Tx) ([]store.Change, error) {
		var err error
		out, err = updateGrant(ctx, tx, id, fn, now())
		if err != nil {
			return nil, err
		}
		return []store.Change{{Kind: store.ChangeGrantUpdated, ID: id}}, nil
	})
	if err != nil {
		return store.Grant{}, err
	}
	return out, nil
}

// updateGrant locks the live grant id, applies fn to a copy and writes it back.
func updateGrant(ctx context.Context, tx pgx.Tx, id string, fn func(*store.Grant) error, t time.Time) (store.Grant, error) {
	var data []byte
	if err := tx.QueryRow(ctx, `SELECT data FROM grants WHERE id = $1 AND `+live("", 2)+` FOR UPDATE`, id, t).Scan(&data); err != nil {
		return store.Grant{}, fmt.Errorf("grant %q: %w", id, err)
	}
	var old store.Grant
	if err := decode(data, &old); err != nil {
		return store.Grant{}, err
	}
	var g store.Grant
	if err := decode(data, &g); err != nil { // a deep copy fn may edit freely
		return store.Grant{}, err
	}
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
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM clients WHERE id = $1 AND `+live("", 2)+` FOR KEY SHARE`, g.ClientID, t).Scan(&one)
		if err != nil {
			return store.Grant{}, fmt.Errorf("client %q: %w", g.ClientID, err)
		}
	}
	data, err := encode(g)
	if err != nil {
		return store.Grant{}, err
	}
	_, err = tx.Exec(ctx, `UPDATE grants SET client_id = $2, user_id = $3, email_lower = $4, created_at = $5, expires_at = $6, data = $7 WHERE id = $1`,
		id, g.ClientID, g.UserID, strings.ToLower(g.Email), g.CreatedAt.UTC(), nullTime(g.ExpiresAt), data)
	return g, err
}

// ListGrants implements store.Grants, through the index of the most
// selective filter.
func (s *Store) ListGrants(ctx context.Context, f store.GrantFilter) ([]store.Grant, error) {
	if err := errors.Join(validKeyPart("client id", f.ClientID), validKeyPart("user id", f.UserID), validKeyPart("email", f.Email)); err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	sql := `SELECT data FROM grants WHERE ` + live("", 1)
	args := []any{now()}
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			sql += " AND " + col + " = $" + strconv.Itoa(len(args))
		}
	}
	add("client_id", f.ClientID)
	add("user_id", f.UserID)
	add("email_lower", strings.ToLower(f.Email))
	sql += " ORDER BY created_at, id"
	var out []store.Grant
	err := s.do(ctx, "list grants", func(ctx context.Context) error {
		var err error
		out, err = queryRecords[store.Grant](ctx, s.pool, sql, args...)
		return err
	})
	return out, err
}

// RevokeGrant implements store.Grants: the grant and, by the foreign key,
// its tokens go in one statement.
func (s *Store) RevokeGrant(ctx context.Context, id string) error {
	if err := validID("grant id", id); err != nil {
		return fmt.Errorf("revoke grant: %w", err)
	}
	ch := store.Change{Kind: store.ChangeGrantRevoked, ID: id}
	return s.do(ctx, "revoke grant", func(ctx context.Context) error {
		return s.deleteAnnounced(ctx, "revoke grant", `WITH d AS (DELETE FROM grants WHERE id = $1 AND `+live("", 2)+` RETURNING id)
SELECT pg_notify('`+channel+`', $3) FROM d`, ch, id, now(), s.payload(ch))
	})
}

// deleteAnnounced runs a DELETE that notifies ch for the row it removed,
// and announces ch here and waits for the other replicas to have handled
// it (settle) when it did. No row is ErrNotFound.
func (s *Store) deleteAnnounced(ctx context.Context, op, sql string, ch store.Change, args ...any) error {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	s.watch.Announce([]store.Change{ch})
	s.settle(ctx, op)
	return nil
}

// ---- tokens ----

// validTokens checks tokens about to be issued.
func validTokens(issue []store.Token) error {
	for _, t := range issue {
		if err := errors.Join(validID("token hash", t.Hash), validID("grant id", t.GrantID)); err != nil {
			return err
		}
		if !tokenKindOK(t.Kind) {
			return fmt.Errorf("%w: token kind %q", store.ErrInvalid, t.Kind)
		}
	}
	return nil
}

// issueTokens stores new tokens, each under a live grant and a hash no
// live token has (an expired token with the same hash is replaced).
func issueTokens(ctx context.Context, tx pgx.Tx, issue []store.Token, t time.Time) error {
	if len(issue) == 0 {
		return nil
	}
	n := len(issue)
	hashes, grants, kinds := make([]string, n), make([]string, n), make([]string, n)
	used, expires := make([]*time.Time, n), make([]*time.Time, n)
	datas := make([][]byte, n)
	for i, tok := range issue {
		data, err := encode(tok)
		if err != nil {
			return err
		}
		hashes[i], grants[i], kinds[i] = tok.Hash, tok.GrantID, string(tok.Kind)
		used[i], expires[i], datas[i] = nullTime(tok.UsedAt), nullTime(tok.ExpiresAt), data
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM tokens WHERE hash = ANY($1) AND expires_at <= $2`, hashes, t)
	b.Queue(`INSERT INTO tokens (hash, grant_id, kind, used_at, expires_at, data)
SELECT i.hash, i.grant_id, i.kind, i.used_at, i.expires_at, i.data
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::bytea[]) AS i (hash, grant_id, kind, used_at, expires_at, data)
JOIN grants g ON g.id = i.grant_id AND `+live("g.", 7), hashes, grants, kinds, used, expires, datas, t)
	br := tx.SendBatch(ctx, b)
	_, err := br.Exec()
	var inserted int64
	if err == nil {
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		inserted = tag.RowsAffected()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("issue token: %w", err)
	}
	if inserted != int64(n) {
		return fmt.Errorf("issue token: grant: %w", store.ErrNotFound)
	}
	return nil
}

// GetToken implements store.Tokens. A token whose grant is gone or expired
// counts as gone too.
func (s *Store) GetToken(ctx context.Context, hash string) (store.Token, error) {
	var t store.Token
	if err := validID("token hash", hash); err != nil {
		return t, fmt.Errorf("get token: %w", err)
	}
	err := s.do(ctx, "get token", func(ctx context.Context) error {
		var data []byte
		var usedAt *time.Time
		if err := s.pool.QueryRow(ctx, sqlGetToken, hash, now()).Scan(&data, &usedAt); err != nil {
			return fmt.Errorf("token: %w", err)
		}
		if err := decode(data, &t); err != nil {
			return err
		}
		t.UsedAt = fromNull(usedAt)
		return nil
	})
	if err != nil {
		return store.Token{}, err
	}
	return t, nil
}

// DeleteToken implements store.Tokens. ErrNotFound if there is no live token.
func (s *Store) DeleteToken(ctx context.Context, hash string) error {
	if err := validID("token hash", hash); err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	ch := store.Change{Kind: store.ChangeTokenDeleted, ID: hash}
	return s.do(ctx, "delete token", func(ctx context.Context) error {
		return s.deleteAnnounced(ctx, "delete token", `WITH d AS (DELETE FROM tokens t USING grants g
WHERE t.hash = $1 AND g.id = t.grant_id AND `+live("t.", 2)+` AND `+live("g.", 2)+` RETURNING t.hash)
SELECT pg_notify('`+channel+`', $3) FROM d`, ch, hash, now(), s.payload(ch))
	})
}

// RotateRefreshToken implements store.Tokens. oldHash must be a refresh
// token (ErrInvalid otherwise) whose grant is live (ErrNotFound otherwise).
// On success it returns the old token, now marked used.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, issue []store.Token, updateGrantFn func(*store.Grant) error) (store.Token, error) {
	var out store.Token
	if err := validID("token hash", oldHash); err != nil {
		return out, fmt.Errorf("rotate refresh token: %w", err)
	}
	if err := validTokens(issue); err != nil {
		return out, fmt.Errorf("rotate refresh token: %w", err)
	}
	err := s.tx(ctx, "rotate refresh token", func(ctx context.Context, tx pgx.Tx) ([]store.Change, error) {
		t := now()
		var err error
		if out, err = markRefreshUsed(ctx, tx, oldHash, t); err != nil {
			return nil, err
		}
		var changes []store.Change
		if updateGrantFn != nil {
			if _, err := updateGrant(ctx, tx, out.GrantID, updateGrantFn, t); err != nil {
				return nil, err
			}
			changes = append(changes, store.Change{Kind: store.ChangeGrantUpdated, ID: out.GrantID})
		}
		return changes, issueTokens(ctx, tx, issue, t)
	})
	if err != nil && !errors.Is(err, store.ErrAlreadyUsed) {
		return store.Token{}, err
	}
	return out, err
}

// markRefreshUsed marks the live, unused refresh token hash (of a live
// grant) used, exactly once; a token already used comes back with
// ErrAlreadyUsed.
func markRefreshUsed(ctx context.Context, tx pgx.Tx, hash string, t time.Time) (store.Token, error) {
	var tok store.Token
	var data []byte
	var usedAt *time.Time
	err := tx.QueryRow(ctx, `UPDATE tokens t SET used_at = $2 FROM grants g
WHERE t.hash = $1 AND t.kind = 'refresh' AND t.used_at IS NULL AND g.id = t.grant_id AND `+live("t.", 2)+` AND `+live("g.", 2)+`
RETURNING t.data, t.used_at`, hash, t).Scan(&data, &usedAt)
	if err == nil {
		if err := decode(data, &tok); err != nil {
			return tok, err
		}
		tok.UsedAt = fromNull(usedAt)
		return tok, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return tok, err
	}
	// Not marked: find out why.
	err = tx.QueryRow(ctx, `SELECT t.data, t.used_at FROM tokens t JOIN grants g ON g.id = t.grant_id
WHERE t.hash = $1 AND `+live("t.", 2)+` AND `+live("g.", 2), hash, t).Scan(&data, &usedAt)
	if err != nil {
		return tok, fmt.Errorf("token: %w", err)
	}
	if err := decode(data, &tok); err != nil {
		return tok, err
	}
	tok.UsedAt = fromNull(usedAt)
	switch {
	case tok.Kind != store.RefreshToken:
		return store.Token{}, fmt.Errorf("%w: token is a %s token, not a refresh token", store.ErrInvalid, tok.Kind)
	case usedAt == nil: // a concurrent rotation rolled back after we looked
		return store.Token{}, errors.New("refresh token changed concurrently; try again")
	}
	return tok, store.ErrAlreadyUsed
}

// ---- consents ----

// PutConsent implements store.Consents: it creates or replaces the consent.
func (s *Store) PutConsent(ctx context.Context, c store.Consent) error {
	if err := errors.Join(validID("user id", c.UserID), validID("client id", c.ClientID)); err != nil {
		return fmt.Errorf("put consent: %w", err)
	}
	data, err := encode(c)
	if err != nil {
		return fmt.Errorf("put consent: %w", err)
	}
	return s.do(ctx, "put consent", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO consents (user_id, client_id, expires_at, data) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, client_id) DO UPDATE SET expires_at = EXCLUDED.expires_at, data = EXCLUDED.data`,
			c.UserID, c.ClientID, nullTime(c.ExpiresAt), data)
		return err
	})
}

// GetConsent implements store.Consents.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (store.Consent, error) {
	var c store.Consent
	if err := errors.Join(validID("user id", userID), validID("client id", clientID)); err != nil {
		return c, fmt.Errorf("get consent: %w", err)
	}
	err := s.do(ctx, "get consent", func(ctx context.Context) error {
		var data []byte
		if err := s.pool.QueryRow(ctx, `SELECT data FROM consents WHERE user_id = $1 AND client_id = $2 AND `+live("", 3),
			userID, clientID, now()).Scan(&data); err != nil {
			return err
		}
		return decode(data, &c)
	})
	if err != nil {
		return store.Consent{}, err
	}
	return c, nil
}

// DeleteConsent implements store.Consents. ErrNotFound if there is no live consent.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	if err := errors.Join(validID("user id", userID), validID("client id", clientID)); err != nil {
		return fmt.Errorf("delete consent: %w", err)
	}
	return s.do(ctx, "delete consent", func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2 AND `+live("", 3), userID, clientID, now())
		if err == nil && tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		return err
	})
}

// ListConsents implements store.Consents, ordered by client ID.
func (s *Store) ListConsents(ctx context.Context, userID string) ([]store.Consent, error) {
	if err := validID("user id", userID); err != nil {
		return nil, fmt.Errorf("list consents: %w", err)
	}
	var out []store.Consent
	err := s.do(ctx, "list consents", func(ctx context.Context) error {
		var err error
		out, err = queryRecords[store.Consent](ctx, s.pool, `SELECT data FROM consents WHERE user_id = $1 AND `+live("", 2)+` ORDER BY client_id`, userID, now())
		return err
	})
	return out, err
}
