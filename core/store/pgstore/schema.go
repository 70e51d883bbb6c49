package pgstore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationLockKey is the pg_advisory_xact_lock key that serialises
// migrations between replicas starting at once ("toolgate" in ASCII).
const migrationLockKey int64 = 0x746f6f6c67617465

// migration is one step of the schema. Steps are applied in order, each
// once, and never edited after a release: a change is a new step.
type migration struct {
	version int
	name    string
	sql     string
}

var migrations = []migration{
	{1, "initial schema", `
CREATE TABLE clients (
	id         text COLLATE "C" PRIMARY KEY,
	expires_at timestamptz,
	data       bytea NOT NULL
);
CREATE INDEX clients_expires_at ON clients (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE pending_authorizations (
	state_hash text COLLATE "C" PRIMARY KEY,
	used_at    timestamptz,
	expires_at timestamptz,
	data       bytea NOT NULL
);
CREATE INDEX pending_authorizations_expires_at ON pending_authorizations (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE auth_codes (
	code_hash  text COLLATE "C" PRIMARY KEY,
	used_at    timestamptz,
	expires_at timestamptz,
	data       bytea NOT NULL
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE grants (
	id          text COLLATE "C" PRIMARY KEY,
	client_id   text COLLATE "C" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	user_id     text COLLATE "C" NOT NULL,
	email_lower text COLLATE "C" NOT NULL,
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz,
	data        bytea NOT NULL
);
CREATE INDEX grants_client ON grants (client_id, created_at, id);
CREATE INDEX grants_user ON grants (user_id, created_at, id);
CREATE INDEX grants_email ON grants (email_lower, created_at, id) WHERE email_lower <> '';
CREATE INDEX grants_expires_at ON grants (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE tokens (
	hash       text COLLATE "C" PRIMARY KEY,
	grant_id   text COLLATE "C" NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
	kind       text NOT NULL,
	used_at    timestamptz,
	expires_at timestamptz,
	data       bytea NOT NULL
);
CREATE INDEX tokens_grant ON tokens (grant_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE consents (
	user_id    text COLLATE "C" NOT NULL,
	client_id  text COLLATE "C" NOT NULL,
	expires_at timestamptz,
	data       bytea NOT NULL,
	PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_expires_at ON consents (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE plugin_kv (
	plugin     text COLLATE "C" NOT NULL,
	key        text COLLATE "C" NOT NULL,
	expires_at timestamptz,
	value      bytea NOT NULL,
	PRIMARY KEY (plugin, key)
);
CREATE INDEX plugin_kv_expires_at ON plugin_kv (expires_at) WHERE expires_at IS NOT NULL;

CREATE SEQUENCE audit_seq;
CREATE TABLE audit (
	seq             bigint PRIMARY KEY,
	id              text COLLATE "C" NOT NULL UNIQUE,
	time            timestamptz NOT NULL,
	user_id         text NOT NULL,
	email           text NOT NULL,
	organization_id text NOT NULL,
	client_id       text NOT NULL,
	plugin          text NOT NULL,
	tool            text NOT NULL,
	decision        text NOT NULL,
	outcome         text NOT NULL,
	error_kind      text NOT NULL,
	duration_ns     bigint NOT NULL,
	expires_at      timestamptz
);
CREATE INDEX audit_time ON audit (time DESC, seq DESC);
CREATE INDEX audit_user ON audit (user_id, time DESC, seq DESC);
CREATE INDEX audit_tool ON audit (tool, time DESC, seq DESC);
CREATE INDEX audit_expires_at ON audit (expires_at) WHERE expires_at IS NOT NULL;
`},
}

// schemaVersion is the version this toolgate migrates the database to.
func schemaVersion() int { return migrations[len(migrations)-1].version }

// migrate brings the schema up to date in one transaction, holding an
// advisory lock so that replicas starting together apply each step once.
// A database already at a newer version than this code knows is refused.
func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return fmt.Errorf("migrate: take the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
			return fmt.Errorf("migrate: create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("migrate: read the schema version: %w", err)
		}
		if current > schemaVersion() {
			return fmt.Errorf("migrate: the database schema is at version %d, newer than this toolgate's %d: upgrade toolgate", current, schemaVersion())
		}
		for _, m := range migrations {
			if m.version <= current {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migrate: version %d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return fmt.Errorf("migrate: record version %d: %w", m.version, err)
			}
			log.Info("store schema migrated", "version", m.version, "name", m.name)
		}
		return nil
	})
}
