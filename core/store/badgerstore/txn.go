package badgerstore

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/toolgate/toolgate/core/store"
)

// live reports whether a record with this ExpiresAt is visible at now.
func live(expiresAt, now time.Time) bool {
	return expiresAt.IsZero() || now.Before(expiresAt)
}

// validID checks an ID, hash or other key part used in a Badger key.
func validID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty %s", store.ErrInvalid, what)
	}
	return validKeyPart(what, id)
}

// validKeyPart is validID for a part that may be empty.
func validKeyPart(what, s string) error {
	if len(s) > maxIDLen {
		return fmt.Errorf("%w: %s longer than %d bytes", store.ErrInvalid, what, maxIDLen)
	}
	if strings.Contains(s, sep) {
		return fmt.Errorf("%w: %s contains NUL", store.ErrInvalid, what)
	}
	return nil
}

// read decodes the record at k into v; store.ErrNotFound if there is none.
// It does not look at expiry: callers do, with their own record's field.
func read(txn *badger.Txn, k []byte, v any) error {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("read %q: %w", printableKey(k), err)
	}
	return item.Value(func(b []byte) error { return decode(b, v) })
}

// write stores v at k with a Badger TTL matching expiresAt.
func write(txn *badger.Txn, k []byte, v any, expiresAt time.Time) error {
	b, err := encode(v)
	if err != nil {
		return err
	}
	return setEntry(txn, k, b, expiresAt)
}

func setEntry(txn *badger.Txn, k, v []byte, expiresAt time.Time) error {
	e := badger.NewEntry(k, v)
	e.ExpiresAt = ttl(expiresAt)
	if err := txn.SetEntry(e); err != nil {
		return fmt.Errorf("write %q: %w", printableKey(k), err)
	}
	return nil
}

func del(txn *badger.Txn, k []byte) error {
	if err := txn.Delete(k); err != nil {
		return fmt.Errorf("delete %q: %w", printableKey(k), err)
	}
	return nil
}

// keysWithPrefix returns copies of every live Badger key under prefix, in order.
func keysWithPrefix(txn *badger.Txn, prefix []byte) [][]byte {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	var keys [][]byte
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	return keys
}

// each decodes every record under prefix into a fresh T and calls fn with
// it and its key, in key order, until fn returns false or an error.
func each[T any](txn *badger.Txn, prefix []byte, fn func(k []byte, v T) (bool, error)) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		var v T
		if err := item.Value(func(b []byte) error { return decode(b, &v) }); err != nil {
			return fmt.Errorf("key %q: %w", printableKey(item.Key()), err)
		}
		more, err := fn(item.Key(), v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// printableKey renders a key for an error message.
func printableKey(k []byte) string {
	return string(bytes.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '.'
		}
		return r
	}, k))
}
