package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/toolgate/toolgate/core/store"
)

const (
	// channel is the LISTEN/NOTIFY channel changes travel on. A payload is
	// "<instance> <kind> <id>": the instance lets the store that made a
	// change skip it (it announced it already).
	channel = "toolgate_changes"
	// sqlNotify sends each payload of $1 on channel.
	sqlNotify = `SELECT pg_notify('` + channel + `', p) FROM unnest($1::text[]) AS p`
	// maxNotify is how many changes one transaction notifies one by one;
	// a transaction with more sends one ChangeUnknown instead.
	maxNotify = 64
	// minPingTimeout is the least a heartbeat ping may take before the
	// connection counts as lost, so a busy database is not mistaken for a
	// dead one.
	minPingTimeout = 5 * time.Second
	// Reconnection backoff of the listening connection.
	minReconnect = 100 * time.Millisecond
	maxReconnect = 10 * time.Second
)

func (s *Store) payload(ch store.Change) string {
	return s.instance + " " + string(ch.Kind) + " " + ch.ID
}

func (s *Store) payloads(changes []store.Change) []string {
	if len(changes) > maxNotify {
		return []string{s.payload(store.Change{Kind: store.ChangeUnknown})}
	}
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = s.payload(c)
	}
	return out
}

// parsePayload reads a notification; ok is false for this store's own. A
// kind this version does not know (from a newer replica) is ChangeUnknown.
func (s *Store) parsePayload(p string) (store.Change, bool) {
	instance, rest, _ := strings.Cut(p, " ")
	if instance == s.instance {
		return store.Change{}, false
	}
	kind, id, _ := strings.Cut(rest, " ")
	switch k := store.ChangeKind(kind); k {
	case store.ChangeGrantUpdated, store.ChangeGrantRevoked, store.ChangeTokenDeleted, store.ChangeClientDeleted:
		return store.Change{Kind: k, ID: id}, true
	}
	return store.Change{Kind: store.ChangeUnknown}, true
}

// Watch calls fn, on a goroutine of the store, for every change committed
// after Watch returned, by this store or by any other sharing the
// database, until ctx is done or the store is closed. fn must not block,
// nor call the store's operations that make changes: the store's own
// operations and other replicas' wait for fn to return (see "Changes
// across replicas" in the package doc). Changes announced:
// ChangeGrantUpdated (UpdateGrant, RotateRefreshToken with an update),
// ChangeGrantRevoked (RevokeGrant, every grant DeleteClient removes, and
// grants GarbageCollect removes), ChangeTokenDeleted (DeleteToken) and
// ChangeClientDeleted (DeleteClient, GarbageCollect).
//
// While the listening connection is down fn gets ChangeSuspended (also
// right away when Watch is called then), and ChangeUnknown once it
// listens again. When fn falls more than 4096 changes behind, the backlog
// is replaced by one ChangeUnknown, or ChangeSuspended while suspended.
func (s *Store) Watch(ctx context.Context, fn func(store.Change)) {
	s.watch.Watch(ctx, fn)
}

// listen opens the listening connection: it listens for changes, for
// other replicas' ack requests and for the acks of this store's own, and
// only then takes its name listenerAppPrefix+instance, by which other
// replicas find it in pg_stat_activity: a session seen under that name
// receives every notification committed afterwards.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return nil, err
	}
	// Separate statements: several in one Exec would run as one
	// transaction, whose LISTENs take effect only at its end, after the
	// new name is visible.
	for _, sql := range []string{
		"LISTEN " + channel + "; LISTEN " + ackRequestChannel + "; LISTEN " + pgx.Identifier{ackChannel(s.instance)}.Sanitize(),
		"SET application_name = '" + listenerAppPrefix + s.instance + "'",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return conn, nil
}

// listenLoop hands notifications to the watchers until ctx is done. When
// the connection fails it suspends the watchers, reconnects with backoff
// and resumes them.
func (s *Store) listenLoop(ctx context.Context, conn *pgx.Conn) {
	defer s.bg.Done()
	for {
		err := s.receive(ctx, conn)
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(closeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("store: lost the connection that listens for other replicas' changes; token caches are bypassed until it is back", "err", err)
		s.watch.Suspend()
		s.barriers.setListening(false)
		if conn = s.reconnect(ctx); conn == nil {
			return
		}
		s.log.Info("store: listening for other replicas' changes again")
		s.barriers.setListening(true)
		s.watch.Resume()
	}
}

// reconnect opens the listening connection again, backing off between
// attempts; nil when ctx ended first.
func (s *Store) reconnect(ctx context.Context) *pgx.Conn {
	backoff := minReconnect
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
		conn, err := s.listen(cctx)
		cancel()
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt == 1 || attempt%10 == 0 {
			s.log.Warn("store: listen for changes", "attempt", attempt, "err", err)
		}
		backoff = min(backoff*2, maxReconnect)
	}
}

// receive waits for notifications and dispatches them. After a
// HeartbeatInterval of silence it pings; it returns the error that broke
// the connection, or ctx's error.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, s.opts.HeartbeatInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			switch n.Channel {
			case channel:
				if c, ok := s.parsePayload(n.Payload); ok {
					s.watch.Announce([]store.Change{c})
				}
			case ackRequestChannel:
				s.answerAckRequest(ctx, n.Payload)
			default: // this store's ack channel
				s.barriers.ack(n.Payload)
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded):
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, max(s.opts.HeartbeatInterval, minPingTimeout))
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("heartbeat: %w", err)
		}
		if s.opts.afterHeartbeat != nil {
			s.opts.afterHeartbeat()
		}
	}
}
