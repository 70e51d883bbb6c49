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
// # Secrets
//
// The connection URL may hold a password: the store never logs it, and its
// errors never quote it.
package pgstore
