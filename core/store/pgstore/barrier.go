package pgstore

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The barrier: after a change announced to watchers commits, the operation
// that made it asks every other live replica to confirm that its watchers
// have run for it, and waits (Options.AckTimeout at most) for the answers.
// See "Changes across replicas" in the package doc for why this is enough.
const (
	// listenerAppPrefix+instance is the application_name of a store's
	// listening session once it listens; other replicas find it in
	// pg_stat_activity by it.
	listenerAppPrefix = "toolgate-listener/"
	// ackRequestChannel carries "<barrier> <instance>": the store
	// instance asks every listener to confirm, on ackChannel(instance),
	// that it has handled everything committed before.
	ackRequestChannel = "toolgate_ack_request"
	// ackChannelPrefix+instance carries "<barrier> <replica>": replica's
	// confirmation of instance's request.
	ackChannelPrefix = "toolgate_ack_"
)

// sqlAckRequest lists the listening sessions of the database, each as
// "<instance> <address> <pid>", and sends ack request $1 unless the only
// one is this store's own (instance $2).
var (
	sqlListeners = `SELECT substr(application_name, ` + strconv.Itoa(len(listenerAppPrefix)+1) + `) AS id, coalesce(host(client_addr), '?') || ' ' || pid AS at
FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '` + listenerAppPrefix + `%'`
	sqlAckRequest = `WITH l AS (` + sqlListeners + `),
a AS (SELECT coalesce(array_agg(id || ' ' || at), '{}') AS listeners, bool_or(id <> $2) AS others, bool_or(id = $2) AS own FROM l)
SELECT listeners, CASE WHEN others OR own IS NOT TRUE THEN pg_notify('` + ackRequestChannel + `', $1)::text END FROM a`
	// sqlRelist lists the listening sessions as sqlAckRequest does.
	sqlRelist = `SELECT coalesce(array_agg(id || ' ' || at), '{}') FROM (` + sqlListeners + `) l`
)

// Rechecks of the listening sessions while a wait lasts, so that a session
// that ended is not waited for: the first after minRelist, each next one
// twice as late, up to maxRelist.
const (
	minRelist = 50 * time.Millisecond
	maxRelist = 500 * time.Millisecond
)

func ackChannel(instance string) string { return ackChannelPrefix + instance }

// validInstance reports whether id looks like a store instance ID
// (newInstanceID); notifications carrying anything else are ignored.
func validInstance(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, r := range id {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// settle waits until the change this store just committed and announced
// has been handed to every watcher of this store and, through their
// listening sessions, of every other live replica, or Options.AckTimeout
// passed, ctx is done or the store is closing. It never fails the
// operation: the change is committed whatever happens here.
func (s *Store) settle(ctx context.Context, op string) {
	if s.opts.AckTimeout < 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.AckTimeout)
	defer cancel()
	go func() {
		select {
		case <-s.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	mark := s.watch.Mark() // after the announcement of the change
	b, id := s.barriers.open()
	if b != nil {
		defer s.barriers.close(id)
		var listeners []string
		if err := s.pool.QueryRow(ctx, sqlAckRequest, id+" "+s.instance, s.instance).Scan(&listeners, nil); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("store: ask the other replicas to confirm a change", "op", op, "err", oneLine{err})
			}
			b = nil
		} else {
			s.barriers.expect(b, listeners)
		}
	}
	if !mark.Wait(ctx) {
		if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			s.log.Warn("store: this replica's change watchers did not return in time", "op", op, "ack_timeout", s.opts.AckTimeout)
		}
		return
	}
	if b == nil {
		return
	}
	for wait := minRelist; ; wait = min(wait*2, maxRelist) {
		t := time.NewTimer(wait)
		select {
		case <-b.done:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			if missed := s.barriers.missed(b); len(missed) > 0 && errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				s.log.Warn("store: replicas did not confirm a change in time; they may serve what it revoked from their token caches until its notification reaches them, and changes will not wait for them until they answer",
					"op", op, "replicas", missed, "ack_timeout", s.opts.AckTimeout)
			}
			return
		case <-t.C:
		}
		// A session that ended since (its replica was killed, or lost its
		// connection and is suspended) will not answer.
		var listeners []string
		if err := s.pool.QueryRow(ctx, sqlRelist).Scan(&listeners); err == nil {
			s.barriers.relist(b, listeners)
		}
	}
}

// answerAckRequest handles payload "<barrier> <instance>" from
// ackRequestChannel: once every watcher of this store has returned from
// the changes received before it (all changes committed before the
// request was), it confirms on instance's ack channel, or directly when
// the request is this store's own. It does not block the listener.
func (s *Store) answerAckRequest(ctx context.Context, payload string) {
	id, waiter, _ := strings.Cut(payload, " ")
	if id == "" || len(id) > 20 || !validInstance(waiter) {
		return
	}
	mark := s.watch.Mark()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
		defer cancel()
		if !mark.Wait(ctx) {
			return // a confirmation now would be a lie
		}
		ack := id + " " + s.instance
		if waiter == s.instance {
			s.barriers.ack(ack)
			return
		}
		if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, ackChannel(waiter), ack); err != nil && ctx.Err() == nil {
			s.log.Debug("store: confirm a change to another replica", "replica", waiter, "err", oneLine{err})
		}
	}()
}

// barriers tracks the waits of settle.
type barriers struct {
	log  *slog.Logger
	self string // this store's instance

	mu sync.Mutex
	// listening is whether this store's listener is connected: acks
	// reach it only then.
	listening bool
	next      uint64
	pending   map[string]*barrier
	// lagging holds replicas (instance IDs) that missed a deadline and
	// have not answered since: settle does not wait for them.
	lagging map[string]bool
	// hiddenLogged is whether the warning that this store cannot see its
	// own listening session was logged.
	hiddenLogged bool
}

// barrier is one settle's wait.
type barrier struct {
	// expected is who must still answer, each with its session's
	// "<address> <pid>"; nil until known.
	expected map[string]string
	// early holds who answered before expected was known.
	early map[string]bool
	done  chan struct{} // closed once expected is empty, or the listener was lost
	over  bool          // done is closed
}

func (bs *barriers) init(log *slog.Logger, self string) {
	bs.log, bs.self = log, self
	bs.listening = true
	bs.pending = make(map[string]*barrier)
	bs.lagging = make(map[string]bool)
}

func (b *barrier) finish() {
	if !b.over {
		b.over = true
		close(b.done)
	}
}

// setListening records whether this store's listener is connected. Losing
// it ends every wait: no ack can arrive any more, and every replica's
// cache, this store's included, is at worst suspended, not stale.
func (bs *barriers) setListening(on bool) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.listening = on
	if !on {
		for _, b := range bs.pending {
			b.finish()
		}
	}
}

// open starts a wait and returns it with its ID; nil while this store is
// not listening.
func (bs *barriers) open() (*barrier, string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if !bs.listening {
		return nil, ""
	}
	bs.next++
	id := strconv.FormatUint(bs.next, 10)
	b := &barrier{early: make(map[string]bool), done: make(chan struct{})}
	bs.pending[id] = b
	return b, id
}

func (bs *barriers) close(id string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	delete(bs.pending, id)
}

// expect sets who must answer b: every listening session listed (as
// "<instance> <address> <pid>") but this store's own, whose watchers
// settle checks directly, and but the lagging. When its own session is
// not listed, pg_stat_activity hides sessions from this role: then b
// waits for its own listener to receive the request at least, which
// arrives after the change at every listener.
func (bs *barriers) expect(b *barrier, listeners []string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	expected := make(map[string]string)
	listed := make(map[string]bool, len(listeners))
	for _, l := range listeners {
		id, where, _ := strings.Cut(l, " ")
		listed[id] = true
		if id == bs.self || bs.lagging[id] || b.early[id] {
			continue
		}
		expected[id] = where
	}
	if !listed[bs.self] && !b.early[bs.self] {
		expected[bs.self] = "this replica"
		if !bs.hiddenLogged {
			bs.hiddenLogged = true
			bs.log.Warn("store: pg_stat_activity does not show this replica's own listening session, so other replicas' sessions may be hidden too; changes wait only for the replicas it shows (see the pgstore package doc)")
		}
	}
	for id := range bs.lagging {
		if !listed[id] {
			delete(bs.lagging, id) // gone from the database
		}
	}
	b.expected = expected
	if len(expected) == 0 {
		b.finish()
	}
}

// relist stops b waiting for sessions no longer among listeners.
func (bs *barriers) relist(b *barrier, listeners []string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b.over || b.expected == nil {
		return
	}
	listed := make(map[string]bool, len(listeners))
	for _, l := range listeners {
		listed[l] = true
	}
	for id, where := range b.expected {
		if id != bs.self && !listed[id+" "+where] {
			delete(b.expected, id)
		}
	}
	if len(b.expected) == 0 {
		b.finish()
	}
}

// ack handles payload "<barrier> <replica>" from this store's ack channel.
func (bs *barriers) ack(payload string) {
	id, from, _ := strings.Cut(payload, " ")
	if !validInstance(from) {
		return
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.lagging[from] {
		delete(bs.lagging, from)
		bs.log.Info("store: replica confirms changes again; changes wait for it again", "replica", from)
	}
	b := bs.pending[id]
	switch {
	case b == nil:
	case b.expected == nil:
		b.early[from] = true
	case b.expected[from] != "":
		delete(b.expected, from)
		if len(b.expected) == 0 {
			b.finish()
		}
	}
}

// missed marks the replicas b still waits for as lagging and returns how
// they were listed; nothing when b ended because the listener was lost.
func (bs *barriers) missed(b *barrier) []string {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b.over || b.expected == nil {
		return nil
	}
	var out []string
	for id, where := range b.expected {
		if id != bs.self {
			bs.lagging[id] = true
			addr, pid, _ := strings.Cut(where, " ")
			where = addr + ", backend pid " + pid
		}
		out = append(out, id+" ("+where+")")
	}
	slices.Sort(out)
	return out
}

// laggingReplicas returns the replicas settle does not wait for.
func (bs *barriers) laggingReplicas() []string {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	out := make([]string, 0, len(bs.lagging))
	for id := range bs.lagging {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
