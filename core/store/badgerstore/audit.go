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

var _ store.AuditBatcher = (*Store)(nil)

// auditEntry is a record ready to be written: its ID and Time settled and
// the key suffix that orders it.
type auditEntry struct {
	r      store.AuditRecord
	suffix string // <time:8><seq:8>
}

// AppendAudit implements store.Audit. An empty ID becomes 16 hex digits of
// a persistent sequence, so assigned IDs sort in append order; a zero Time
// becomes now. A caller-chosen ID that is taken is ErrAlreadyExists.
func (s *Store) AppendAudit(ctx context.Context, r store.AuditRecord) (store.AuditRecord, error) {
	es, err := s.prepareAudit(ctx, "append audit", []store.AuditRecord{r})
	if err != nil {
		return store.AuditRecord{}, err
	}
	if err := s.update(ctx, "append audit", func(txn *badger.Txn) ([]store.Change, error) {
		return nil, putAudit(txn, es[0])
	}); err != nil {
		return store.AuditRecord{}, err
	}
	return es[0].r, nil
}

// AppendAuditBatch implements store.AuditBatcher: the records are settled
// as AppendAudit settles one, in slice order, and written in one
// transaction, so one commit and one fsync. A batch Badger refuses as too
// big for one transaction is split in halves, recursively, and the halves
// are committed in order; on an error after a part was committed, the
// records of the committed parts are returned with it.
func (s *Store) AppendAuditBatch(ctx context.Context, rs []store.AuditRecord) ([]store.AuditRecord, error) {
	if len(rs) == 0 {
		return []store.AuditRecord{}, nil
	}
	es, err := s.prepareAudit(ctx, "append audit batch", rs)
	if err != nil {
		return nil, err
	}
	n, err := s.commitAudit(ctx, es)
	out := make([]store.AuditRecord, n)
	for i := range out {
		out[i] = es[i].r
	}
	if err != nil {
		return out, err
	}
	return out, nil
}

// commitAudit writes es in one transaction or, if that is too big, in
// halves; it returns how many leading entries were committed.
func (s *Store) commitAudit(ctx context.Context, es []auditEntry) (int, error) {
	err := s.update(ctx, "append audit batch", func(txn *badger.Txn) ([]store.Change, error) {
		for _, e := range es {
			if err := putAudit(txn, e); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	switch {
	case err == nil:
		return len(es), nil
	case !errors.Is(err, badger.ErrTxnTooBig) || len(es) == 1:
		return 0, err
	}
	half := len(es) / 2
	n, err := s.commitAudit(ctx, es[:half])
	if err != nil {
		return n, err
	}
	m, err := s.commitAudit(ctx, es[half:])
	return n + m, err
}

// prepareAudit takes a sequence number for each record, in order, and
// settles its ID and Time.
func (s *Store) prepareAudit(ctx context.Context, op string, rs []store.AuditRecord) ([]auditEntry, error) {
	done, err := s.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	defer done()
	es := make([]auditEntry, len(rs))
	for i, r := range rs {
		n, err := s.seq.Next()
		if err != nil {
			return nil, fmt.Errorf("%s: next id: %w", op, err)
		}
		if r.ID == "" {
			r.ID = fmt.Sprintf("%016x", n)
		}
		if err := validID("audit id", r.ID); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if r.Time.IsZero() {
			r.Time = time.Now()
		}
		r.Time = r.Time.UTC()
		var seq [8]byte
		binary.BigEndian.PutUint64(seq[:], n)
		es[i] = auditEntry{r: r, suffix: timeKey(r.Time) + string(seq[:])}
	}
	return es, nil
}

// putAudit writes one settled record and its ID index entry; an ID that is
// taken, also by an earlier record of the same transaction, is
// ErrAlreadyExists.
func putAudit(txn *badger.Txn, e auditEntry) error {
	_, err := txn.Get(key(prefixAuditID, e.r.ID))
	switch {
	case err == nil:
		return fmt.Errorf("audit id %q: %w", e.r.ID, store.ErrAlreadyExists)
	case !errors.Is(err, badger.ErrKeyNotFound):
		return err
	}
	if err := write(txn, key(prefixAudit, e.suffix), e.r, e.r.ExpiresAt); err != nil {
		return err
	}
	return setEntry(txn, key(prefixAuditID, e.r.ID), []byte(e.suffix), e.r.ExpiresAt)
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
