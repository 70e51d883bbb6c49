package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/toolgate/toolgate/core/store"
)

// gcBatch bounds the deletions of one GarbageCollect transaction.
const gcBatch = 256

// GarbageCollect implements store.Store. It deletes every record expired at
// now together with what hangs off it (an expired client's grants, an
// expired grant's tokens, index entries), removes index entries and tokens
// whose record or grant is gone (Badger's TTL drops records on its own), and
// then runs Badger's value-log GC until it finds nothing to rewrite.
func (s *Store) GarbageCollect(ctx context.Context, now time.Time) error {
	done, err := s.begin(ctx, "garbage collect")
	if err != nil {
		return err
	}
	defer done()
	var removed int
	n, err := s.gcRecords(ctx, now)
	removed += n
	if err == nil {
		n, err = s.gcIndexes(ctx)
		removed += n
	}
	if err != nil {
		return fmt.Errorf("garbage collect: %w", err)
	}
	rewrites := 0
	for ctx.Err() == nil {
		err := s.db.RunValueLogGC(gcDiscardRatio)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			break
		}
		if err != nil {
			return fmt.Errorf("garbage collect: value log: %w", err)
		}
		rewrites++
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("garbage collect: %w", err)
	}
	s.log.Debug("store garbage collected", "removed", removed, "value_log_rewrites", rewrites)
	return nil
}

// expiredKeys lists the keys under prefix whose record has expired at now.
func (s *Store) expiredKeys(prefix string, now time.Time) ([][]byte, error) {
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(prefix)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(opts.Prefix); it.ValidForPrefix(opts.Prefix); it.Next() {
			item := it.Item()
			var exp time.Time
			err := item.Value(func(b []byte) error {
				if prefix == prefixKV {
					var err error
					_, exp, err = decodeKV(b)
					return err
				}
				var r struct{ ExpiresAt time.Time }
				err := decode(b, &r)
				exp = r.ExpiresAt
				return err
			})
			if err != nil {
				s.log.Warn("store: undecodable record left in place", "key", printableKey(item.Key()), "err", err)
				continue
			}
			if !live(exp, now) {
				keys = append(keys, item.KeyCopy(nil))
			}
		}
		return nil
	})
	return keys, err
}

// gcRecords deletes expired primary records and what depends on them.
func (s *Store) gcRecords(ctx context.Context, now time.Time) (int, error) {
	removed := 0
	for _, prefix := range primaryPrefixes {
		keys, err := s.expiredKeys(prefix, now)
		if err != nil {
			return removed, err
		}
		size := gcBatch
		for len(keys) > 0 {
			if err := ctx.Err(); err != nil {
				return removed, err
			}
			batch := keys[:min(size, len(keys))]
			var changes []store.Change
			err := s.retry(ctx, func(txn *badger.Txn) error {
				changes = changes[:0]
				for _, k := range batch {
					c, err := deleteExpired(txn, prefix, k, now)
					if err != nil {
						return err
					}
					changes = append(changes, c...)
				}
				return nil
			})
			if errors.Is(err, badger.ErrTxnTooBig) && size > 1 {
				size /= 2 // records with many dependents: smaller batches
				continue
			}
			if err != nil {
				return removed, err
			}
			keys = keys[len(batch):]
			s.watch.Announce(changes)
			removed += len(batch)
		}
	}
	return removed, nil
}

// deleteExpired deletes the record at k if it is still expired at now.
func deleteExpired(txn *badger.Txn, prefix string, k []byte, now time.Time) ([]store.Change, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r struct {
		ExpiresAt time.Time
		ID        string
	}
	if err := item.Value(func(b []byte) error {
		if prefix == prefixKV {
			var err error
			_, r.ExpiresAt, err = decodeKV(b)
			return err
		}
		return decode(b, &r)
	}); err != nil {
		return nil, err
	}
	if live(r.ExpiresAt, now) {
		return nil, nil // renewed since we looked
	}
	id := string(k[len(prefix):])
	switch prefix {
	case prefixClient:
		// The tokens of its grants go in gcIndexes, in batches.
		return deleteClient(txn, id, false)
	case prefixGrant:
		return []store.Change{{Kind: store.ChangeGrantRevoked, ID: id}}, deleteGrant(txn, id, false)
	case prefixToken:
		var t store.Token
		if err := read(txn, k, &t); err != nil {
			return nil, err
		}
		return []store.Change{{Kind: store.ChangeTokenDeleted, ID: id}}, errors.Join(del(txn, tokenByGrantKey(t.GrantID, id)), del(txn, k))
	case prefixAudit:
		return nil, errors.Join(del(txn, key(prefixAuditID, r.ID)), del(txn, k))
	}
	return nil, del(txn, k)
}

// gcIndexes deletes index entries whose record is gone, and tokens whose
// grant is gone.
func (s *Store) gcIndexes(ctx context.Context) (int, error) {
	grantOf := func(prefix string) func(k, v []byte) [][]byte {
		return func(k, _ []byte) [][]byte {
			_, tail, ok := splitIndexKey(k, prefix)
			if !ok || len(tail) < 8 {
				return nil
			}
			return [][]byte{key(prefixGrant, tail[8:])}
		}
	}
	// Each index names the records an entry depends on; the entry is stale
	// when any of them is gone.
	indexes := []struct {
		prefix  string
		needs   func(k, v []byte) [][]byte
		orphans bool // a stale entry's token goes too (tokens by grant)
	}{
		{prefixGrantByUser, grantOf(prefixGrantByUser), false},
		{prefixGrantByEmail, grantOf(prefixGrantByEmail), false},
		{prefixGrantByClient, grantOf(prefixGrantByClient), false},
		{prefixAuditID, func(_, v []byte) [][]byte { return [][]byte{key(prefixAudit, string(v))} }, false},
		{prefixTokenByGrant, func(k, _ []byte) [][]byte {
			gid, hash, ok := splitIndexKey(k, prefixTokenByGrant)
			if !ok {
				return nil
			}
			return [][]byte{key(prefixToken, hash), key(prefixGrant, gid)}
		}, true},
	}
	removed := 0
	for _, ix := range indexes {
		var stale [][]byte
		err := s.db.View(func(txn *badger.Txn) error {
			opts := badger.DefaultIteratorOptions
			opts.Prefix = []byte(ix.prefix)
			it := txn.NewIterator(opts)
			defer it.Close()
			for it.Seek(opts.Prefix); it.ValidForPrefix(opts.Prefix); it.Next() {
				item := it.Item()
				v, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				needs := ix.needs(item.Key(), v)
				gone := len(needs) == 0
				for _, k := range needs {
					if gone {
						break
					}
					if gone, err = missing(txn, k); err != nil {
						return err
					}
				}
				if gone {
					stale = append(stale, item.KeyCopy(nil))
				}
			}
			return nil
		})
		if err != nil {
			return removed, err
		}
		for len(stale) > 0 {
			if err := ctx.Err(); err != nil {
				return removed, err
			}
			batch := stale[:min(gcBatch, len(stale))]
			stale = stale[len(batch):]
			err := s.retry(ctx, func(txn *badger.Txn) error {
				for _, k := range batch {
					if _, hash, ok := splitIndexKey(k, ix.prefix); ix.orphans && ok {
						if err := del(txn, key(prefixToken, hash)); err != nil {
							return err
						}
					}
					if err := del(txn, k); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return removed, err
			}
			removed += len(batch)
		}
	}
	return removed, nil
}

// splitIndexKey splits an index key prefix + head + sep + tail.
func splitIndexKey(k []byte, prefix string) (head, tail string, ok bool) {
	if len(k) < len(prefix) {
		return "", "", false
	}
	head, tail, ok = strings.Cut(string(k[len(prefix):]), sep)
	return head, tail, ok
}

func missing(txn *badger.Txn, k []byte) (bool, error) {
	if k == nil {
		return true, nil
	}
	_, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return true, nil
	}
	return false, err
}

// retry runs fn in a read-write transaction, retrying on write conflicts.
// The caller holds the read side of s.mu.
func (s *Store) retry(ctx context.Context, fn func(txn *badger.Txn) error) error {
	var err error
	for attempt := 0; attempt < maxAttempts && ctx.Err() == nil; attempt++ {
		if err = s.db.Update(fn); !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// gcLoop runs GarbageCollect every interval until Close.
func (s *Store) gcLoop(interval time.Duration, afterGC func(error)) {
	defer close(s.gcDone)
	if interval < 0 {
		<-s.stopGC
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stopGC
		cancel()
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := s.GarbageCollect(ctx, time.Now())
			if err != nil && ctx.Err() == nil {
				s.log.Warn("store garbage collection failed", "err", err)
			}
			if afterGC != nil {
				afterGC(err)
			}
		}
	}
}
