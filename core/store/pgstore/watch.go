package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
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
	// maxQueued is how many changes may wait for a slow watcher before they
	// are collapsed into one ChangeUnknown (or ChangeSuspended).
	maxQueued = 4096
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	w := &watcher{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	s.watch.add(w)
	go func() {
		defer close(w.exited)
		defer s.watch.remove(w)
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.done:
				return
			case <-w.wake:
			}
			q, seq := w.take()
			for _, c := range q {
				if ctx.Err() != nil {
					return
				}
				w.fn(c)
			}
			w.handledUpTo(seq)
		}
	}()
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
		s.watch.suspend()
		s.barriers.setListening(false)
		if conn = s.reconnect(ctx); conn == nil {
			return
		}
		s.log.Info("store: listening for other replicas' changes again")
		s.barriers.setListening(true)
		s.watch.resume()
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
					s.watch.announce([]store.Change{c})
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

// watchers fans changes out to every Watch of the store.
type watchers struct {
	mu        sync.Mutex
	list      []*watcher
	suspended bool
}

type watcher struct {
	fn     func(store.Change)
	wake   chan struct{} // a push happened
	done   chan struct{} // closed by closeAll
	exited chan struct{} // closed when the Watch goroutine has returned
	mu     sync.Mutex
	// queue holds changes not yet handed to fn.
	queue  []store.Change
	closed bool
	// pushed counts pushes; handled is the count of those whose changes
	// fn has returned from (a collapsed backlog counts as all of them).
	pushed, handled uint64
	// progress, made by a waiter, is closed when handled grows.
	progress chan struct{}
}

func (ws *watchers) add(w *watcher) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.suspended {
		w.push([]store.Change{{Kind: store.ChangeSuspended}}, true)
	}
	ws.list = append(ws.list, w)
}

func (ws *watchers) remove(w *watcher) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for i, x := range ws.list {
		if x == w {
			ws.list = append(ws.list[:i], ws.list[i+1:]...)
			return
		}
	}
}

func (ws *watchers) announce(changes []store.Change) {
	if len(changes) == 0 {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, w := range ws.list {
		w.push(changes, ws.suspended)
	}
}

// suspend tells every watcher that changes may be missed from now on.
func (ws *watchers) suspend() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.suspended {
		return
	}
	ws.suspended = true
	for _, w := range ws.list {
		w.push([]store.Change{{Kind: store.ChangeSuspended}}, true)
	}
}

// resume tells every watcher that changes flow again and that anything may
// have changed meanwhile.
func (ws *watchers) resume() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.suspended = false
	for _, w := range ws.list {
		w.push([]store.Change{{Kind: store.ChangeUnknown}}, false)
	}
}

func (ws *watchers) closeAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, w := range ws.list {
		w.mu.Lock()
		if !w.closed {
			w.closed = true
			close(w.done)
		}
		w.mu.Unlock()
	}
}

// push queues changes. suspended is the store's state once they are
// applied: a backlog that grows too long collapses into the one change
// that leaves a cache in that state.
func (w *watcher) push(changes []store.Change, suspended bool) {
	state := false // changes hold a suspension or a resumption
	for _, c := range changes {
		if c.Kind == store.ChangeSuspended || c.Kind == store.ChangeUnknown {
			state = true
		}
	}
	w.mu.Lock()
	switch {
	case !state && len(w.queue) == 1 && (w.queue[0].Kind == store.ChangeUnknown || w.queue[0].Kind == store.ChangeSuspended):
		// Everything cached is dropped anyway; ordinary changes add nothing.
	case len(w.queue)+len(changes) > maxQueued:
		collapsed := store.Change{Kind: store.ChangeUnknown}
		if suspended {
			collapsed.Kind = store.ChangeSuspended
		}
		w.queue = append(w.queue[:0], collapsed)
	default:
		w.queue = append(w.queue, changes...)
	}
	w.pushed++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take empties the queue; seq is the count of pushes it holds, for
// handledUpTo once fn has returned from every change of it.
func (w *watcher) take() (q []store.Change, seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	q = w.queue
	w.queue = nil
	return q, w.pushed
}

// handledUpTo records that fn has returned from the changes of the first
// seq pushes.
func (w *watcher) handledUpTo(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq <= w.handled {
		return
	}
	w.handled = seq
	if w.progress != nil {
		close(w.progress)
		w.progress = nil
	}
}

// mark is how many pushes one watcher had received at some point.
type mark struct {
	w   *watcher
	seq uint64
}

// marks records, for every watcher, the pushes it has received so far.
func (ws *watchers) marks() []mark {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	out := make([]mark, len(ws.list))
	for i, w := range ws.list {
		w.mu.Lock()
		out[i] = mark{w, w.pushed}
		w.mu.Unlock()
	}
	return out
}

// flush waits until every watcher of marks has returned from the changes
// pushed before its mark, or has stopped, or ctx is done; it reports
// whether all of them got there.
func flush(ctx context.Context, marks []mark) bool {
	for _, m := range marks {
		if !m.w.waitHandled(ctx, m.seq) {
			return false
		}
	}
	return true
}

// waitHandled waits until fn has returned from the changes of the first
// seq pushes, or the watcher has stopped (its goroutine returned: it
// calls fn no more), or ctx is done (false).
func (w *watcher) waitHandled(ctx context.Context, seq uint64) bool {
	for {
		w.mu.Lock()
		if w.handled >= seq {
			w.mu.Unlock()
			return true
		}
		if w.progress == nil {
			w.progress = make(chan struct{})
		}
		progress := w.progress
		w.mu.Unlock()
		select {
		case <-progress:
		case <-w.exited:
			return true
		case <-ctx.Done():
			return false
		}
	}
}
