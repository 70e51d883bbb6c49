// Package badgerstore implements the toolgate storage contract
// (github.com/toolgate/toolgate/core/store) on Badger, an embedded key/value
// database, for a server running on one machine.
//
// # Layout
//
// Every record is one Badger entry under a short key prefix (see keys.go),
// encoded as a one-byte format version followed by JSON. Secondary indexes
// (grants by user, e-mail and client; tokens by grant; consents by user;
// audit records by time) are further entries with empty values whose keys
// embed the indexed value; they are written and removed in the same
// transaction as the record they point to, so a crash never leaves them
// half-updated.
//
// # Expiry
//
// A record with an ExpiresAt is written with a Badger TTL (whole seconds,
// rounded up) so Badger drops it on its own, and every read also compares
// the record's ExpiresAt with the clock, so expiry is exact to the
// millisecond. GarbageCollect removes expired records and index entries and
// reclaims value-log space; Open starts a goroutine that does the same every
// Options.GCInterval.
//
// # Concurrency and durability
//
// Read-modify-write operations run in Badger transactions with conflict
// detection and are retried, with a short jittered backoff, when Badger
// reports a conflict. With Options.SyncWrites every commit is fsynced before
// the method returns; without it a returned nil survives a crash of the
// process (the data is in the kernel's page cache) but not a power loss.
//
// Only one process may use a data directory at a time: Open fails with an
// error wrapping ErrLocked when another one holds it.
package badgerstore
