package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// KVGet implements store.PluginKV.
func (s *Store) KVGet(ctx context.Context, plugin, k string) ([]byte, error) {
	if err := store.ValidatePluginKey(plugin, k); err != nil {
		return nil, fmt.Errorf("kv get: %w", err)
	}
	var value []byte
	err := s.do(ctx, "kv get", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT value FROM plugin_kv WHERE plugin = $1 AND key = $2 AND `+live("", 3),
			plugin, k, now()).Scan(&value)
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
	if value == nil {
		value = []byte{}
	}
	return s.do(ctx, "kv put", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO plugin_kv (plugin, key, expires_at, value) VALUES ($1, $2, $3, $4)
ON CONFLICT (plugin, key) DO UPDATE SET expires_at = EXCLUDED.expires_at, value = EXCLUDED.value`,
			plugin, k, nullTime(exp), value)
		return err
	})
}

// KVDelete implements store.PluginKV.
func (s *Store) KVDelete(ctx context.Context, plugin, k string) error {
	if err := store.ValidatePluginKey(plugin, k); err != nil {
		return fmt.Errorf("kv delete: %w", err)
	}
	return s.do(ctx, "kv delete", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `DELETE FROM plugin_kv WHERE plugin = $1 AND key = $2`, plugin, k)
		return err
	})
}

// KVList implements store.PluginKV. A limit of zero or less means no
// limit. Keys are printable ASCII and the column uses the "C" collation,
// so the order is byte order and a prefix is a key range.
func (s *Store) KVList(ctx context.Context, plugin, prefix, after string, limit int) ([]string, error) {
	if err := store.ValidatePluginPrefix(plugin, prefix); err != nil {
		return nil, fmt.Errorf("kv list: %w", err)
	}
	sql := `SELECT key FROM plugin_kv WHERE plugin = $1 AND ` + live("", 2) + ` AND key >= $3`
	args := []any{plugin, now(), prefix}
	if prefix != "" {
		// Every key starting with prefix sorts below prefix with its last
		// byte incremented (at most 0x7f: still ASCII).
		upper := prefix[:len(prefix)-1] + string(rune(prefix[len(prefix)-1]+1))
		args = append(args, upper)
		sql += ` AND key < $` + strconv.Itoa(len(args))
	}
	if after != "" {
		args = append(args, after)
		sql += ` AND key > $` + strconv.Itoa(len(args))
	}
	sql += ` ORDER BY key`
	if limit > 0 {
		args = append(args, limit)
		sql += ` LIMIT $` + strconv.Itoa(len(args))
	}
	keys := []string{}
	err := s.do(ctx, "kv list", func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}
