package storetest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

func testKVCRUD(t *testing.T, h *harness) {
	_, err := h.s.KVGet(h.ctx, "p", "missing")
	wantErr(t, "KVGet missing", err, store.ErrNotFound)

	value := []byte{0, 1, 2, 'x', 0xff}
	wantErr(t, "KVPut", h.s.KVPut(h.ctx, "p", "dir/key.json", value, 0), nil)
	value[0] = 9 // the store must have kept its own copy
	got, err := h.s.KVGet(h.ctx, "p", "dir/key.json")
	wantErr(t, "KVGet", err, nil)
	if want := []byte{0, 1, 2, 'x', 0xff}; !bytes.Equal(got, want) {
		t.Fatalf("KVGet = %v, want %v", got, want)
	}

	wantErr(t, "KVPut overwrite", h.s.KVPut(h.ctx, "p", "dir/key.json", []byte("v2"), time.Hour), nil)
	got, _ = h.s.KVGet(h.ctx, "p", "dir/key.json")
	if string(got) != "v2" {
		t.Fatalf("KVGet after overwrite = %q, want v2", got)
	}

	wantErr(t, "KVPut empty value", h.s.KVPut(h.ctx, "p", "empty", nil, 0), nil)
	got, err = h.s.KVGet(h.ctx, "p", "empty")
	wantErr(t, "KVGet empty value", err, nil)
	if len(got) != 0 {
		t.Fatalf("KVGet empty value = %q", got)
	}

	big := bytes.Repeat([]byte{'b'}, store.MaxKVValueLen)
	wantErr(t, "KVPut largest value", h.s.KVPut(h.ctx, "p", "big", big, 0), nil)
	got, _ = h.s.KVGet(h.ctx, "p", "big")
	if !bytes.Equal(got, big) {
		t.Fatalf("KVGet largest value: got %d bytes, want %d", len(got), len(big))
	}
	wantErr(t, "KVPut oversized value", h.s.KVPut(h.ctx, "p", "big", append(big, 'x'), 0), store.ErrInvalid)

	wantErr(t, "KVDelete", h.s.KVDelete(h.ctx, "p", "dir/key.json"), nil)
	_, err = h.s.KVGet(h.ctx, "p", "dir/key.json")
	wantErr(t, "KVGet deleted", err, store.ErrNotFound)
	wantErr(t, "KVDelete missing", h.s.KVDelete(h.ctx, "p", "dir/key.json"), nil)
}

func testKVInvalid(t *testing.T, h *harness) {
	tests := []struct{ name, plugin, key string }{
		{"empty plugin", "", "k"},
		{"upper-case plugin", "Plugin", "k"},
		{"plugin with slash", "a/b", "k"},
		{"plugin with dot", "a.b", "k"},
		{"long plugin", strings.Repeat("p", store.MaxPluginNameLen+1), "k"},
		{"empty key", "p", ""},
		{"dot-dot", "p", ".."},
		{"dot-dot inside", "p", "a/../b"},
		{"leading slash", "p", "/etc/passwd"},
		{"NUL", "p", "a\x00b"},
		{"newline", "p", "a\nb"},
		{"non-ASCII", "p", "clé"},
		{"long key", "p", strings.Repeat("k", store.MaxKVKeyLen+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, "KVPut", h.s.KVPut(h.ctx, tc.plugin, tc.key, []byte("v"), 0), store.ErrInvalid)
			_, err := h.s.KVGet(h.ctx, tc.plugin, tc.key)
			wantErr(t, "KVGet", err, store.ErrInvalid)
			wantErr(t, "KVDelete", h.s.KVDelete(h.ctx, tc.plugin, tc.key), store.ErrInvalid)
			if tc.key != "" { // an empty prefix is fine
				_, err = h.s.KVList(h.ctx, tc.plugin, tc.key, "", 10)
				wantErr(t, "KVList", err, store.ErrInvalid)
			}
		})
	}
	wantErr(t, "KVPut negative ttl", h.s.KVPut(h.ctx, "p", "k", []byte("v"), -time.Second), store.ErrInvalid)
	// The longest valid names work.
	long := strings.Repeat("k", store.MaxKVKeyLen)
	plugin := strings.Repeat("p", store.MaxPluginNameLen)
	wantErr(t, "KVPut longest key", h.s.KVPut(h.ctx, plugin, long, []byte("v"), 0), nil)
	keys, err := h.s.KVList(h.ctx, plugin, "", "", 0)
	wantErr(t, "KVList", err, nil)
	sameStrings(t, "KVList", keys, []string{long})
}

func testKVIsolation(t *testing.T, h *harness) {
	// Plugin names that are prefixes of one another, with keys that would
	// collide if names and keys were simply concatenated.
	puts := []struct{ plugin, key, value string }{
		{"a", "b/c", "a:b/c"},
		{"a-b", "c", "a-b:c"},
		{"ab", "c", "ab:c"},
		{"a", "x", "a:x"},
		// The reserved system namespace is a namespace of its own.
		{store.SystemNamespace, "replica/a", "system:replica/a"},
		{"toolgate", "system/replica/a", "toolgate:system/replica/a"},
	}
	for _, p := range puts {
		wantErr(t, "KVPut", h.s.KVPut(h.ctx, p.plugin, p.key, []byte(p.value), 0), nil)
	}
	for _, p := range puts {
		got, err := h.s.KVGet(h.ctx, p.plugin, p.key)
		wantErr(t, "KVGet", err, nil)
		if string(got) != p.value {
			t.Fatalf("KVGet(%q, %q) = %q, want %q", p.plugin, p.key, got, p.value)
		}
	}
	_, err := h.s.KVGet(h.ctx, "b", "x")
	wantErr(t, "another plugin's key", err, store.ErrNotFound)
	_, err = h.s.KVGet(h.ctx, "ab", "x")
	wantErr(t, "another plugin's key", err, store.ErrNotFound)
	for plugin, want := range map[string][]string{"a": {"b/c", "x"}, "a-b": {"c"}, "ab": {"c"}, "b": nil,
		store.SystemNamespace: {"replica/a"}, "toolgate": {"system/replica/a"}, "toolgate-system": nil} {
		keys, err := h.s.KVList(h.ctx, plugin, "", "", 0)
		wantErr(t, "KVList", err, nil)
		sameStrings(t, "KVList("+plugin+")", keys, want)
	}
	wantErr(t, "KVDelete in another plugin", h.s.KVDelete(h.ctx, "ab", "x"), nil)
	if _, err := h.s.KVGet(h.ctx, "a", "x"); err != nil {
		t.Fatalf("a delete in plugin ab removed plugin a's key: %v", err)
	}
}

func testKVList(t *testing.T, h *harness) {
	for _, k := range []string{"user/2", "user/10", "user/1", "users", "team/1", "user/3"} {
		wantErr(t, "KVPut", h.s.KVPut(h.ctx, "p", k, []byte(k), 0), nil)
	}
	wantErr(t, "KVPut expired-soon", h.s.KVPut(h.ctx, "p", "user/0", []byte("x"), time.Nanosecond), nil)
	tests := []struct {
		name, prefix, after string
		limit               int
		want                []string
	}{
		{"everything", "", "", 0, []string{"team/1", "user/1", "user/10", "user/2", "user/3", "users"}},
		{"prefix", "user/", "", 0, []string{"user/1", "user/10", "user/2", "user/3"}},
		{"prefix and limit", "user/", "", 2, []string{"user/1", "user/10"}},
		{"next page", "user/", "user/10", 2, []string{"user/2", "user/3"}},
		{"last page", "user/", "user/3", 2, nil},
		{"after a missing key", "user/", "user/15", 10, []string{"user/2", "user/3"}},
		{"after before the prefix", "user/", "a", 1, []string{"user/1"}},
		{"after past the prefix", "user/", "zzz", 10, nil},
		{"prefix matching nothing", "nobody", "", 0, nil},
		{"whole key as prefix", "users", "", 0, []string{"users"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := h.s.KVList(h.ctx, "p", tc.prefix, tc.after, tc.limit)
			wantErr(t, "KVList", err, nil)
			sameStrings(t, "KVList", keys, tc.want)
		})
	}
	// Paging through everything one key at a time visits each key once.
	var all []string
	after := ""
	for range 10 {
		page, err := h.s.KVList(h.ctx, "p", "", after, 1)
		wantErr(t, "KVList page", err, nil)
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1]
	}
	sameStrings(t, "KVList paged one by one", all, tests[0].want)
}

func testKVTTL(t *testing.T, h *harness) {
	wantErr(t, "KVPut long ttl", h.s.KVPut(h.ctx, "p", "long", []byte("v"), time.Hour), nil)
	wantErr(t, "KVPut short ttl", h.s.KVPut(h.ctx, "p", "short", []byte("v"), 20*time.Millisecond), nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := h.s.KVGet(h.ctx, "p", "short")
		if err != nil {
			wantErr(t, "KVGet after the ttl", err, store.ErrNotFound)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a key with a 20ms ttl is still there after 10s")
		}
	}
	keys, err := h.s.KVList(h.ctx, "p", "", "", 0)
	wantErr(t, "KVList", err, nil)
	sameStrings(t, "KVList after the ttl", keys, []string{"long"})
	// Overwriting without a ttl makes the key permanent again.
	wantErr(t, "KVPut", h.s.KVPut(h.ctx, "p", "short", []byte("v"), 0), nil)
	if _, err := h.s.KVGet(h.ctx, "p", "short"); err != nil {
		t.Fatalf("KVGet of a key put again: %v", err)
	}
}
