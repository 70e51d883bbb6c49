package badgerstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/toolgate/toolgate/core/store"
)

// defaultAuditLimit is ListAudit's limit when the query has none.
const defaultAuditLimit = 100

// AppendAudit implements store.Audit. An empty ID becomes 16 hex digits of
// a persistent sequence, so assigned IDs sort in append order; a zero Time
// becomes now. A caller-chosen ID that is taken is ErrAlreadyExists.
func (s *Store) AppendAudit(ctx context.Context, r store.AuditRecord) (store.AuditRecord, error) {
	done, err := s.begin(ctx, "append audit")
	if err != nil {
		return store.AuditRecord{}, err
	}
	n, err := s.seq.Next()
	done()
	if err != nil {
		return store.AuditRecord{}, fmt.Errorf("append audit: next id: %w", err)
	}
	if r.ID == "" {
		r.ID = fmt.Sprintf("%016x", n)
	}
	if err := validID("audit id", r.ID); err != nil {
		return store.AuditRecord{}, fmt.Errorf("append audit: %w", err)
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], n)
	suffix := timeKey(r.Time) + string(seq[:])
	err = s.update(ctx, "append audit", func(txn *badger.Txn) ([]store.Change, error) {
		_, err := txn.Get(key(prefixAuditID, r.ID))
		switch {
		case err == nil:
			return nil, fmt.Errorf("audit id %q: %w", r.ID, store.ErrAlreadyExists)
		case !errors.Is(err, badger.ErrKeyNotFound):
			return nil, err
		}
		if err := write(txn, key(prefixAudit, suffix), r, r.ExpiresAt); err != nil {
			return nil, err
		}
		return nil, setEntry(txn, key(prefixAuditID, r.ID), []byte(suffix), r.ExpiresAt)
	})
	if err != nil {
		return store.AuditRecord{}, err
	}
	return r, nil
}

// ListAudit implements store.Audit: newest Time first, records with the
// same millisecond in reverse append order. A Limit of zero or less means 100.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	out := []store.AuditRecord{}
	err := s.view(ctx, "list audit", func(txn *badger.Txn) error {
		prefix := []byte(prefixAudit)
		opts := badger.DefaultIteratorOptions
		opts.Reverse = true
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		now := time.Now()
		var since []byte
		if !q.Since.IsZero() {
			since = key(prefixAudit, timeKey(q.Since))
		}
		for it.Seek(key(prefixAudit, "\xff\xff\xff\xff\xff\xff\xff\xff\xff")); it.ValidForPrefix(prefix); it.Next() {
			item := it.Item()
			if since != nil && string(item.Key()[:len(since)]) < string(since) {
				break // every further record is older than Since's millisecond
			}
			var r store.AuditRecord
			if err := item.Value(func(b []byte) error { return decode(b, &r) }); err != nil {
				return fmt.Errorf("key %q: %w", printableKey(item.Key()), err)
			}
			if !live(r.ExpiresAt, now) || r.Time.Before(q.Since) ||
				q.UserID != "" && r.UserID != q.UserID || q.Tool != "" && r.Tool != q.Tool {
				continue
			}
			out = append(out, r)
			if len(out) == limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
