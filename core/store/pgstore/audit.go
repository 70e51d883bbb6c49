package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/toolgate/toolgate/core/store"
)

// defaultAuditLimit is ListAudit's limit when the query has none.
const defaultAuditLimit = 100

// auditColumns are the columns of an audit row after seq, in the order
// insertAudit and scanAudit use.
const auditColumns = `id, time, user_id, email, organization_id, client_id, plugin, tool, decision, outcome, error_kind, duration_ns, expires_at`

// settleAudit gives r its ID (16 hex digits of the audit sequence when
// empty) and Time (now when zero), at the precision stored.
func settleAudit(r store.AuditRecord, seq int64) (store.AuditRecord, error) {
	if r.ID == "" {
		r.ID = fmt.Sprintf("%016x", seq)
	}
	if err := validID("audit id", r.ID); err != nil {
		return r, err
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC().Truncate(time.Microsecond)
	if !r.ExpiresAt.IsZero() {
		r.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Microsecond)
	}
	return r, nil
}

// AppendAudit implements store.Audit. An empty ID becomes 16 hex digits of
// a database sequence, so assigned IDs sort in append order across every
// replica; a zero Time becomes now. A caller-chosen ID that is taken is
// ErrAlreadyExists. Free-text fields lose any NUL or invalid UTF-8, which
// text columns cannot hold.
func (s *Store) AppendAudit(ctx context.Context, r store.AuditRecord) (store.AuditRecord, error) {
	out, err := s.appendAudit(ctx, "append audit", []store.AuditRecord{r})
	if err != nil {
		return store.AuditRecord{}, err
	}
	return out[0], nil
}

// AppendAuditBatch implements store.AuditBatcher: the records take
// consecutive sequence numbers in slice order and go into the table in
// one multi-row INSERT, all or nothing.
func (s *Store) AppendAuditBatch(ctx context.Context, rs []store.AuditRecord) ([]store.AuditRecord, error) {
	if len(rs) == 0 {
		return []store.AuditRecord{}, nil
	}
	return s.appendAudit(ctx, "append audit batch", rs)
}

func (s *Store) appendAudit(ctx context.Context, op string, rs []store.AuditRecord) ([]store.AuditRecord, error) {
	out := make([]store.AuditRecord, len(rs))
	err := s.do(ctx, op, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT nextval('audit_seq') FROM generate_series(1, $1) ORDER BY 1`, len(rs))
		if err != nil {
			return fmt.Errorf("next ids: %w", err)
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("next ids: %w", err)
		}
		n := len(rs)
		var (
			ids, users, emails, orgs, clients = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			plugins, tools, decisions         = make([]string, n), make([]string, n), make([]string, n)
			outcomes, errKinds                = make([]string, n), make([]string, n)
			times                             = make([]time.Time, n)
			expires                           = make([]*time.Time, n)
			durations                         = make([]int64, n)
		)
		for i, r := range rs {
			if out[i], err = settleAudit(r, seqs[i]); err != nil {
				return err
			}
			r = out[i]
			ids[i], times[i], users[i], emails[i] = r.ID, r.Time, clean(r.UserID), clean(r.Email)
			orgs[i], clients[i], plugins[i], tools[i] = clean(r.OrganizationID), clean(r.ClientID), clean(r.Plugin), clean(r.Tool)
			decisions[i], outcomes[i], errKinds[i] = clean(r.Decision), clean(r.Outcome), clean(r.ErrorKind)
			durations[i], expires[i] = int64(r.Duration), nullTime(r.ExpiresAt)
		}
		_, err = s.pool.Exec(ctx, `INSERT INTO audit (seq, `+auditColumns+`)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
	$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::timestamptz[])`,
			seqs, ids, times, users, emails, orgs, clients, plugins, tools, decisions, outcomes, errKinds, durations, expires)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListAudit implements store.Audit: newest Time first, records with the
// same instant in reverse append order. A Limit of zero or less means 100.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	sql := `SELECT ` + auditColumns + ` FROM audit WHERE ` + live("", 1)
	args := []any{now()}
	if !q.Since.IsZero() {
		args = append(args, q.Since.UTC())
		sql += ` AND time >= $` + strconv.Itoa(len(args))
	}
	if q.UserID != "" {
		args = append(args, clean(q.UserID))
		sql += ` AND user_id = $` + strconv.Itoa(len(args))
	}
	if q.Tool != "" {
		args = append(args, clean(q.Tool))
		sql += ` AND tool = $` + strconv.Itoa(len(args))
	}
	args = append(args, limit)
	sql += ` ORDER BY time DESC, seq DESC LIMIT $` + strconv.Itoa(len(args))
	out := []store.AuditRecord{}
	err := s.do(ctx, "list audit", func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r store.AuditRecord
			var dur int64
			var exp *time.Time
			if err := rows.Scan(&r.ID, &r.Time, &r.UserID, &r.Email, &r.OrganizationID, &r.ClientID, &r.Plugin, &r.Tool,
				&r.Decision, &r.Outcome, &r.ErrorKind, &dur, &exp); err != nil {
				return err
			}
			r.Time = r.Time.UTC()
			r.Duration = time.Duration(dur)
			r.ExpiresAt = fromNull(exp)
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
