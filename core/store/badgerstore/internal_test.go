package badgerstore

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/toolgate/toolgate/core/store"
)

// rawKeys returns every key under the given prefixes, printable.
func rawKeys(t *testing.T, s *Store, prefixes ...string) []string {
	t.Helper()
	var out []string
	err := s.db.View(func(txn *badger.Txn) error {
		for _, p := range prefixes {
			for _, k := range keysWithPrefix(txn, []byte(p)) {
				out = append(out, printableKey(k))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGarbageCollectRemovesPhysically(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir(), GCInterval: -1})
	ctx := t.Context()
	if err := s.CreateClient(ctx, store.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(time.Hour)
	g := store.Grant{ID: "g", ClientID: "c", UserID: "u", Email: "U@x", CreatedAt: time.Now(), ExpiresAt: soon}
	if err := s.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	code := store.HashSecret("code")
	if err := s.CreateAuthCode(ctx, store.AuthCode{CodeHash: code, GrantID: "g", ExpiresAt: soon}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExchangeAuthCode(ctx, code, crashTokens(code, "g"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, store.AuditRecord{Tool: "t", ExpiresAt: soon}); err != nil {
		t.Fatal(err)
	}
	if err := s.KVPut(ctx, "p", "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// Leftovers of a grant Badger's TTL dropped on its own: an index entry
	// and a token whose grant is gone.
	err := s.db.Update(func(txn *badger.Txn) error {
		orphan := store.Token{Hash: "orphan", Kind: store.AccessToken, GrantID: "dropped"}
		return errors.Join(
			setEntry(txn, grantByUserKey("u", time.Now(), "dropped"), nil, time.Time{}),
			write(txn, key(prefixToken, "orphan"), orphan, time.Time{}),
			setEntry(txn, tokenByGrantKey("dropped", "orphan"), nil, time.Time{}),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	all := []string{prefixGrant, prefixGrantByUser, prefixGrantByEmail, prefixGrantByClient, prefixToken, prefixTokenByGrant, prefixCode, prefixAudit, prefixAuditID, prefixKV}
	if got := len(rawKeys(t, s, all...)); got != 15 {
		t.Fatalf("before GC: %d keys, want 15: %q", got, rawKeys(t, s, all...))
	}

	if err := s.GarbageCollect(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := len(rawKeys(t, s, all...)); got != 12 {
		t.Fatalf("after GC now: %d keys, want 12 (the three orphan entries gone): %q", got, rawKeys(t, s, all...))
	}
	if err := s.GarbageCollect(ctx, soon.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := rawKeys(t, s, all...); len(got) != 0 {
		t.Fatalf("after GC past every expiry, keys are left: %q", got)
	}
	if got := rawKeys(t, s, prefixClient); len(got) != 1 {
		t.Fatalf("the client that never expires was collected: %q", got)
	}
}

func TestBadgerTTLMatchesExpiresAt(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir(), GCInterval: -1})
	exp := time.Now().Add(90*time.Minute + 300*time.Millisecond)
	if err := s.CreateClient(t.Context(), store.Client{ID: "c", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(t.Context(), store.Client{ID: "forever"}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]uint64{"c": uint64(exp.Unix() + 1), "forever": 0} {
		err := s.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(key(prefixClient, id))
			if err != nil {
				return err
			}
			if got := item.ExpiresAt(); got != want {
				t.Errorf("client %s: Badger ExpiresAt %d, want %d", id, got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestTTL(t *testing.T) {
	base := time.Unix(1000, 0)
	tests := []struct {
		name string
		in   time.Time
		want uint64
	}{
		{"zero", time.Time{}, 0},
		{"whole second", base, 1000},
		{"rounded up", base.Add(time.Millisecond), 1001},
		{"before 1970", time.Unix(-5, 0), 1},
	}
	for _, tc := range tests {
		if got := ttl(tc.in); got != tc.want {
			t.Errorf("%s: ttl(%v) = %d, want %d", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{time.Unix(-100, 0), time.Unix(0, 0), time.Unix(0, int64(time.Millisecond)), time.Unix(1<<40, 0)}
	for i := 1; i < len(times); i++ {
		if timeKey(times[i-1]) >= timeKey(times[i]) {
			t.Errorf("timeKey(%v) does not sort before timeKey(%v)", times[i-1], times[i])
		}
	}
}

func TestPeriodicGC(t *testing.T) {
	runs := make(chan error, 16)
	s := openT(t, Options{Dir: t.TempDir(), GCInterval: 5 * time.Millisecond, afterGC: func(err error) {
		select {
		case runs <- err:
		default:
		}
	}})
	if err := s.CreateClient(t.Context(), store.Client{ID: "c", ExpiresAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// Forget the runs that ended before now; of the next two, the second
	// started after the write had committed.
	for len(runs) > 0 {
		<-runs
	}
	for range 2 {
		timeout := time.NewTimer(10 * time.Second)
		select {
		case err := <-runs:
			if err != nil {
				t.Fatalf("periodic GarbageCollect: %v", err)
			}
		case <-timeout.C:
			t.Fatal("no periodic GarbageCollect within 10s")
		}
		timeout.Stop()
	}
	if got := rawKeys(t, s, prefixClient); len(got) != 0 {
		t.Fatalf("the periodic GC left the expired client: %q", got)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	zone := time.FixedZone("x", 3600)
	in := store.Grant{ID: "g", Permissions: []string{"a"}, UpstreamRefreshToken: []byte{0, 255}, CreatedAt: time.Date(2030, 1, 2, 3, 4, 5, 6, zone)}
	b, err := encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != formatV1 {
		t.Fatalf("leading byte %d, want %d", b[0], formatV1)
	}
	var out store.Grant
	if err := decode(b, &out); err != nil {
		t.Fatal(err)
	}
	if !out.CreatedAt.Equal(in.CreatedAt) || out.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt %v, want %v in UTC", out.CreatedAt, in.CreatedAt)
	}
	out.CreatedAt = in.CreatedAt
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
	for _, bad := range [][]byte{nil, {}, {2, '{', '}'}, {formatV1, '{'}, {formatV1, '[', ']'}} {
		if err := decode(bad, &out); !errors.Is(err, errCorrupt) {
			t.Errorf("decode(%q) = %v, want errCorrupt", bad, err)
		}
	}

	kv := encodeKV([]byte("value"), time.UnixMilli(1234))
	v, exp, err := decodeKV(kv)
	if err != nil || !bytes.Equal(v, []byte("value")) || !exp.Equal(time.UnixMilli(1234)) {
		t.Fatalf("decodeKV = %q, %v, %v", v, exp, err)
	}
	v, exp, err = decodeKV(encodeKV(nil, time.Time{}))
	if err != nil || len(v) != 0 || !exp.IsZero() {
		t.Fatalf("decodeKV of an empty value without expiry = %q, %v, %v", v, exp, err)
	}
	for _, bad := range [][]byte{nil, {formatV1}, {9, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, err := decodeKV(bad); !errors.Is(err, errCorrupt) {
			t.Errorf("decodeKV(%q) = %v, want errCorrupt", bad, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, v := range []any{
		store.Grant{ID: "g", Permissions: []string{"a"}, CreatedAt: time.Unix(1, 2)},
		store.Token{Hash: "h", Kind: store.RefreshToken},
		store.Client{ID: "c", Metadata: []byte(`{"a":1}`)},
		store.AuditRecord{ID: "1", Duration: time.Second},
	} {
		b, err := encode(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{formatV1, 'n', 'u', 'l', 'l'})
	f.Add([]byte{formatV1, '{', '"', 'C', 'r', 'e', 'a', 't', 'e', 'd', 'A', 't', '"', ':', '"', 'x', '"', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var g store.Grant
		if err := decode(b, &g); err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, err := encode(g)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var g2 store.Grant
		if err := decode(again, &g2); err != nil {
			t.Fatalf("decode of a re-encoded record: %v", err)
		}
		if !reflect.DeepEqual(g, g2) {
			t.Fatalf("unstable round trip: %+v vs %+v", g, g2)
		}
	})
}

func FuzzDecodeKV(f *testing.F) {
	f.Add(encodeKV([]byte("v"), time.UnixMilli(99)))
	f.Add(encodeKV(nil, time.Time{}))
	f.Add([]byte{formatV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, exp, err := decodeKV(b)
		if err != nil {
			return
		}
		if len(v) != len(b)-kvHeaderLen {
			t.Fatalf("value of %d bytes from %d stored", len(v), len(b))
		}
		if !exp.IsZero() && exp.UnixMilli() == 0 {
			t.Fatalf("expiry %v from a stored 0", exp)
		}
		if again := encodeKV(v, exp); !exp.IsZero() && !bytes.Equal(again, b) {
			t.Fatalf("re-encoding changed the bytes: %x vs %x", again, b)
		}
	})
}

// manyTokens gives grant g n access tokens, in exchanges that each fit a
// transaction, and returns their hashes.
func manyTokens(t *testing.T, s *Store, g string, n int) []string {
	t.Helper()
	var hashes []string
	for len(hashes) < n {
		var toks []store.Token
		for range min(1000, n-len(hashes)) {
			h := store.HashSecret(store.NewSecret())
			hashes = append(hashes, h)
			toks = append(toks, store.Token{Hash: h, Kind: store.AccessToken, GrantID: g})
		}
		code := store.HashSecret(store.NewSecret())
		if err := s.CreateAuthCode(t.Context(), store.AuthCode{CodeHash: code, GrantID: g}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ExchangeAuthCode(t.Context(), code, toks, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	return hashes
}

// Deleting more tokens than one transaction holds still works: the grant
// (or client) goes first, atomically, and the tokens vanish with it.
func TestDeleteBeyondOneTransaction(t *testing.T) {
	const n = 15000 // well past what one 8 MiB-memtable transaction deletes
	tests := []struct {
		name string
		del  func(s *Store) error
	}{
		{"RevokeGrant", func(s *Store) error { return s.RevokeGrant(t.Context(), "g") }},
		{"DeleteClient", func(s *Store) error { return s.DeleteClient(t.Context(), "c") }},
		{"GarbageCollect", func(s *Store) error { return s.GarbageCollect(t.Context(), time.Now().Add(2*time.Hour)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, Options{Dir: t.TempDir(), GCInterval: -1})
			ctx := t.Context()
			if err := s.CreateClient(ctx, store.Client{ID: "c"}); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateGrant(ctx, store.Grant{ID: "g", ClientID: "c", UserID: "u", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			hashes := manyTokens(t, s, "g", n)
			if err := tc.del(s); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if _, err := s.GetGrant(ctx, "g"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("GetGrant: %v, want ErrNotFound", err)
			}
			for _, h := range []string{hashes[0], hashes[n/2], hashes[n-1]} {
				if _, err := s.GetToken(ctx, h); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("GetToken: %v, want ErrNotFound", err)
				}
			}
			if got := rawKeys(t, s, prefixToken, prefixTokenByGrant); len(got) != 0 {
				t.Fatalf("%d token keys left", len(got))
			}
		})
	}
}
