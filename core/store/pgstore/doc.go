// Package pgstore implements the toolgate storage contract
// (github.com/toolgate/toolgate/core/store) on PostgreSQL, through pgx, so
// that several toolgate replicas can share every client, grant, token,
// consent, plugin key/value entry and audit record.
//
// # Schema
//
// Open creates and migrates the schema itself: numbered migrations (see
// schema.go) run in one transaction under pg_advisory_xact_lock, and the
// versions applied are kept in the schema_migrations table, so any number
// of replicas may start at once. A database migrated by a newer toolgate
// than this one is refused.
//
// Each record is a row whose key and queried fields (IDs, hashes, the
// lower-cased e-mail, creation, use and expiry times) are columns, and
// whose remaining fields are a JSON document in a bytea column: bytea
// rather than jsonb because jsonb cannot hold U+0000, which Go strings
// may, and nothing ever queries inside it. Audit records are all columns,
// for operators who query them with SQL. Key columns use the "C"
// collation, so lists come back in byte order, as from Badger. Nothing
// secret is stored: tokens, codes, states and client secrets arrive as
// hashes (store.HashSecret) and are keys; the upstream refresh token is
// encrypted by the caller.
//
// # Expiry
//
// A record with an ExpiresAt has it in its expires_at column, and every
// read compares it with the caller's clock (time.Now of the process, as
// for Badger), so an expired record is absent to the millisecond whether
// or not it was deleted yet. GarbageCollect deletes expired rows. Open
// starts a sweep every Options.SweepInterval; replicas take turns through
// pg_try_advisory_lock, so at most one of them sweeps at a time.
//
// # Concurrency
//
// Transactions run at READ COMMITTED. Read-modify-write operations lock
// the row (SELECT ... FOR UPDATE) and single-use operations mark the row
// with a conditional UPDATE ... WHERE used_at IS NULL, so under concurrent
// presentation from any number of replicas exactly one caller wins and the
// rest get store.ErrAlreadyUsed. Deadlocks and serialization failures are
// retried. Statements are prepared once per connection and cached (pgx's
// default statement cache), which needs a session-pooled connection: a
// PgBouncer in transaction-pooling mode in front of the database must be
// told to support prepared statements.
//
// # Changes across replicas
//
// Every change that store.Watcher announces (grant updated or revoked,
// token deleted, client deleted) is sent with pg_notify on the channel
// "toolgate_changes" inside the transaction that makes it, so it reaches
// the other replicas exactly when it commits; the replica that made it
// announces it to its own watchers directly. Each store keeps one
// dedicated listening connection outside the pool. When that connection
// is lost, watchers get store.ChangeSuspended at once (announcements may
// be missed: stop caching), and store.ChangeUnknown once it listens again
// (drop everything cached and resume). A connection that goes silent is
// detected by a ping every Options.HeartbeatInterval.
//
// Operations that revoke or change what a cached bearer token stands for
// (RevokeGrant, DeleteToken, DeleteClient, UpdateGrant, RotateRefreshToken
// with a grant update) return only once every live replica has handled
// the change: when they return, every Watch callback of every replica has
// run for it, so the next request anywhere is checked against the new
// state. After the change commits, the operation:
//
//  1. lists the live replicas: the listening sessions in pg_stat_activity
//     of the same database whose application_name is
//     "toolgate-listener/<instance>" (a listener takes that name only
//     once it listens, so any session listed receives every notification
//     committed afterwards);
//  2. sends an ack request on "toolgate_ack_request" in a transaction of
//     its own. PostgreSQL delivers notifications to each listening session
//     in commit order, so a listener receives the request after the
//     change;
//  3. each listener, on the request, waits until every Watch callback of
//     its store has returned from the changes it received before (not
//     merely queued them), then answers on "toolgate_ack_<instance>" of the
//     asking store, whose own listener collects the answers. Listeners
//     never block on this, so a store's own listener answering its own
//     store cannot deadlock;
//  4. meanwhile waits for its own store's Watch callbacks directly, and
//     for every listed replica's answer, for Options.AckTimeout (2 s) at
//     most. Every so often while it waits it lists the sessions again and
//     stops waiting for one that has ended.
//
// Which replicas need no answer, and why that is safe:
//
//   - A replica whose listening session has ended (its process was killed
//     and the kernel closed its socket, or the connection broke) is not
//     listed, or stops being waited for once its session is gone. If the
//     process is alive, it noticed the broken connection and its watchers
//     got store.ChangeSuspended: its cache is empty and bypassed until it
//     listens again, then dropped (store.ChangeUnknown), so it serves
//     nothing stale. The one window left is a connection that breaks at
//     the very moment of the change, until that replica notices: at once
//     when its socket is closed, after Options.HeartbeatInterval and a
//     ping when the network goes silent.
//   - A replica that is listed but does not answer in time (partitioned,
//     stalled, or overloaded) costs one AckTimeout: the operation logs a
//     warning naming it (instance, address and backend pid) and succeeds,
//     since its change is committed. That replica may serve what the
//     change revoked from its cache until the notification reaches it.
//     Later operations still ask it but do not wait for it until it
//     answers one request again (an Info log says so), so a partitioned
//     replica does not slow every refresh down until PostgreSQL drops its
//     session; it stops serving from its cache on its own once its
//     heartbeat fails.
//   - While this store's own listening connection is down, it cannot
//     receive answers, and its operations do not wait; its own cache is
//     suspended meanwhile.
//
// pg_stat_activity shows every session's application_name and database
// to every role (checked with PostgreSQL 15), so replicas may connect as
// different roles; the address in the warning needs the same role or
// pg_read_all_stats. Where a hosted PostgreSQL hides other sessions, a
// store that cannot see even its own listening session logs a warning
// once and then waits only for its own listener to receive the request,
// which PostgreSQL delivers to every listener after the change. A replica
// of an older toolgate, which names its listener otherwise, is not waited
// for.
//
// Watch callbacks must therefore not block, nor call the store's
// operations that make changes: such an operation would wait for the
// callback that called it, for AckTimeout. Measured with BenchmarkSettle
// on a 2-core machine with a local PostgreSQL, the wait adds about
// 0.2 ms to an operation with no other replica and 0.4 to 0.5 ms with
// one other replica.
//
// # Secrets
//
// The connection URL may hold a password: the store never logs it, and its
// errors never quote it.
package pgstore
