package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/pgstore"
)

// postgresOpenTimeout bounds connecting to PostgreSQL and migrating its
// schema at start, so an unreachable database fails start-up with an
// error rather than hanging it.
const postgresOpenTimeout = time.Minute

// openPostgres opens the shared PostgreSQL store (store.backend =
// "postgres"). The URL is a secret: pgstore never logs or quotes it.
func openPostgres(ctx context.Context, cfg config.StoreConfig, logger *slog.Logger) (store.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, postgresOpenTimeout)
	defer cancel()
	s, err := pgstore.Open(ctx, cfg.Postgres.URL.Reveal(), pgstore.Options{
		Logger:        logger,
		SweepInterval: cfg.GCInterval,
		MaxConns:      int32(cfg.Postgres.MaxConns),
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}
