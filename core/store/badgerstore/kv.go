package badgerstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/toolgate/toolgate/core/store"
)

// Plugin values are stored raw rather than as JSON (they are up to 1 MiB of
// opaque bytes): formatV1, then the expiry as 8 big-endian bytes of Unix
// milliseconds (0: none), then the value.
const kvHeaderLen = 9

func encodeKV(value []byte, expiresAt time.Time) []byte {
	b := make([]byte, kvHeaderLen+len(value))
	b[0] = formatV1
	if !expiresAt.IsZero() {
		binary.BigEndian.PutUint64(b[1:kvHeaderLen], uint64(expiresAt.UnixMilli()))
	}
	copy(b[kvHeaderLen:], value)
	return b
}

// decodeKV splits a stored plugin value into a copy of the value and its
// expiry (zero: none).
func decodeKV(b []byte) ([]byte, time.Time, error) {
	if len(b) < kvHeaderLen {
		return nil, time.Time{}, fmt.Errorf("decode plugin value: %w: %d bytes", errCorrupt, len(b))
	}
	if b[0] != formatV1 {
		return nil, time.Time{}, fmt.Errorf("decode plugin value: %w: unknown format version %d", errCorrupt, b[0])
	}
	var exp time.Time
	if ms := binary.BigEndian.Uint64(b[1:kvHeaderLen]); ms != 0 {
		exp = time.UnixMilli(int64(ms)).UTC()
	}
	return bytes.Clone(b[kvHeaderLen:]), exp, nil
}

// KVGet implements store.PluginKV.
func (s *Store) KVGet(ctx context.Context, plugin, k string) ([]byte, error) {
	if err := store.ValidatePluginKey(plugin, k); err != nil {
		return nil, fmt.Errorf("kv get: %w", err)
	}
	var value []byte
	err := s.view(ctx, "kv get", func(txn *badger.Txn) error {
		item, err := txn.Get(kvKey(plugin, k))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		var exp time.Time
		if err := item.Value(func(b []byte) error {
			value, exp, err = decodeKV(b)
			return err
		}); err != nil {
			return err
		}
		if !live(exp, time.Now()) {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if value == nil {
		value = []byte{}
	}
	return value, nil
}

// KVPut implements store.PluginKV. Values may be up to store.MaxKVValueLen
// bytes; a negative ttl is ErrInvalid.
func (s *Store) KVPut(ctx context.Context, plugin, k string, value []byte, ttl time.Duration) error {
	if err := store.ValidateKVPut(plugin, k, value, ttl); err != nil {
		return fmt.Errorf("kv put: %w", err)
	}
	var exp time.Time
	if ttl > 0 {
		exp = time.Now().Add(ttl)
	}
	b := encodeKV(value, exp)
	return s.update(ctx, "kv put", func(txn *badger.Txn) ([]store.Change, error) {
		return nil, setEntry(txn, kvKey(plugin, k), b, exp)
	})
}

// KVDelete implements store.PluginKV.
func (s *Store) KVDelete(ctx context.Context, plugin, k string) error {
	if err := store.ValidatePluginKey(plugin, k); err != nil {
		return fmt.Errorf("kv delete: %w", err)
	}
	return s.update(ctx, "kv delete", func(txn *badger.Txn) ([]store.Change, error) {
		return nil, del(txn, kvKey(plugin, k))
	})
}

// KVList implements store.PluginKV. A limit of zero or less means no limit.
func (s *Store) KVList(ctx context.Context, plugin, prefix, after string, limit int) ([]string, error) {
	if err := store.ValidatePluginPrefix(plugin, prefix); err != nil {
		return nil, fmt.Errorf("kv list: %w", err)
	}
	keys := []string{}
	err := s.view(ctx, "kv list", func(txn *badger.Txn) error {
		base := kvKey(plugin, "")
		p := kvKey(plugin, prefix)
		start := p
		if a := kvKey(plugin, after+"\x00"); after != "" && bytes.Compare(a, start) > 0 {
			start = a
		}
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = p
		it := txn.NewIterator(opts)
		defer it.Close()
		now := time.Now()
		for it.Seek(start); it.ValidForPrefix(p); it.Next() {
			item := it.Item()
			// Badger's TTL is in whole seconds, rounded up: only a key whose
			// Badger expiry is within the next second needs its exact one.
			if e := item.ExpiresAt(); e != 0 && e <= uint64(now.Unix())+1 {
				var exp time.Time
				if err := item.Value(func(b []byte) error {
					var err error
					_, exp, err = decodeKV(b)
					return err
				}); err != nil {
					return err
				}
				if !live(exp, now) {
					continue
				}
			}
			keys = append(keys, string(item.Key()[len(base):]))
			if limit > 0 && len(keys) == limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}
