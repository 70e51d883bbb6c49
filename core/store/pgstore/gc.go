package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/toolgate/toolgate/core/store"
)

// sweepLockKey is the pg_try_advisory_lock key that lets one replica at a
// time run the periodic sweep ("tg-sweep" in ASCII).
const sweepLockKey int64 = 0x74672d7377656570

// gcBatch bounds the rows one DELETE of GarbageCollect removes, so no
// transaction grows with the backlog.
const gcBatch = 5000

// GarbageCollect implements store.Store: it deletes every row expired at
// now, in batches. An expired client takes its grants and their tokens
// with it, an expired grant its tokens (as in badgerstore); the grants and
// clients removed are announced to every replica like revocations. Expired
// tokens are not announced: no cache keeps a token past its expiry.
// Several replicas may collect at once; each row goes once. Each batch,
// not the whole collection, is bounded by Options.QueryTimeout.
func (s *Store) GarbageCollect(ctx context.Context, now time.Time) error {
	ctx, done, err := s.beginWithin(ctx, "garbage collect", 0)
	if err != nil {
		return err
	}
	defer done()
	now = now.UTC()
	removed := 0
	// Grants of expired clients and expired grants first, so each
	// revocation is announced, then the clients.
	announced := []struct {
		sql  string
		kind store.ChangeKind
	}{
		{`DELETE FROM grants WHERE id = ANY(ARRAY(SELECT g.id FROM grants g JOIN clients c ON c.id = g.client_id
WHERE c.expires_at <= $1 LIMIT $2)) RETURNING id`, store.ChangeGrantRevoked},
		{`DELETE FROM grants WHERE id = ANY(ARRAY(SELECT id FROM grants WHERE expires_at <= $1 LIMIT $2)) RETURNING id`, store.ChangeGrantRevoked},
		{`DELETE FROM clients WHERE id = ANY(ARRAY(SELECT id FROM clients WHERE expires_at <= $1 LIMIT $2)) RETURNING id`, store.ChangeClientDeleted},
	}
	for _, a := range announced {
		for {
			n, err := s.gcAnnounced(ctx, a.sql, a.kind, now)
			removed += n
			if err != nil {
				return fmt.Errorf("garbage collect: %w", err)
			}
			if n < gcBatch {
				break
			}
		}
	}
	for _, table := range []string{"tokens", "pending_authorizations", "auth_codes", "consents", "plugin_kv", "audit"} {
		for {
			bctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
			tag, err := s.pool.Exec(bctx, `DELETE FROM `+table+` WHERE ctid = ANY(ARRAY(SELECT ctid FROM `+table+` WHERE expires_at <= $1 LIMIT $2))`, now, gcBatch)
			cancel()
			if err != nil {
				return fmt.Errorf("garbage collect: %s: %w", table, err)
			}
			removed += int(tag.RowsAffected())
			if tag.RowsAffected() < gcBatch {
				break
			}
		}
	}
	s.log.Debug("store garbage collected", "removed", removed)
	return nil
}

// gcAnnounced runs one batch DELETE ... RETURNING id in a transaction that
// also notifies the removals, and announces them here after the commit.
func (s *Store) gcAnnounced(ctx context.Context, sql string, kind store.ChangeKind, now time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	defer cancel()
	var ids []string
	_, err := s.runTx(ctx, func(ctx context.Context, tx pgx.Tx) ([]store.Change, error) {
		rows, err := tx.Query(ctx, sql, now, gcBatch)
		if err != nil {
			return nil, err
		}
		if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, err
		}
		changes := make([]store.Change, len(ids))
		for i, id := range ids {
			changes[i] = store.Change{Kind: kind, ID: id}
		}
		return changes, nil
	})
	return len(ids), err
}

// sweepLoop runs GarbageCollect every SweepInterval, when this store wins
// the sweep lock, until ctx is done.
func (s *Store) sweepLoop(ctx context.Context) {
	defer s.bg.Done()
	if s.opts.SweepInterval < 0 {
		return
	}
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ran, err := s.sweep(ctx)
		if ctx.Err() != nil {
			return // closing: the sweep was cut short on purpose
		}
		if err != nil {
			s.log.Warn("store sweep failed", "err", err)
		}
		if s.opts.afterSweep != nil {
			s.opts.afterSweep(ran, err)
		}
	}
}

// sweep takes the sweep lock on one pooled connection, if no other
// replica holds it, collects garbage and releases the lock. It reports
// whether it held the lock.
func (s *Store) sweep(ctx context.Context) (bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("sweep: %w", err)
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, sweepLockKey).Scan(&locked); err != nil {
		conn.Release()
		return false, fmt.Errorf("sweep: take the lock: %w", err)
	}
	if !locked {
		conn.Release()
		return false, nil
	}
	gcErr := s.GarbageCollect(ctx, time.Now())
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.QueryTimeout)
	defer cancel()
	if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, sweepLockKey); err != nil {
		// Closing the session is what releases its lock then.
		_ = conn.Conn().Close(uctx)
		s.log.Warn("store sweep: release the lock", "err", err)
	}
	conn.Release()
	return true, gcErr
}
