package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

func openT(t *testing.T, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestOptionsDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Options
		want Options
	}{
		{"zero", Options{}, Options{Dir: "./data", GCInterval: 5 * time.Minute, MemTableSize: 8 << 20, NumMemtables: 2, BlockCacheSize: 8 << 20, IndexCacheSize: 4 << 20}},
		{"kept", Options{Dir: "/x", GCInterval: time.Second, MemTableSize: 1 << 20, NumMemtables: 3, BlockCacheSize: 1, IndexCacheSize: 2}, Options{Dir: "/x", GCInterval: time.Second, MemTableSize: 1 << 20, NumMemtables: 3, BlockCacheSize: 1, IndexCacheSize: 2}},
		{"GC off", Options{GCInterval: -1}, Options{Dir: "./data", GCInterval: -1, MemTableSize: 8 << 20, NumMemtables: 2, BlockCacheSize: 8 << 20, IndexCacheSize: 4 << 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in
			got.setDefaults()
			if got.Logger == nil {
				t.Fatal("no default logger")
			}
			got.Logger = nil
			if got.Dir != tc.want.Dir || got.GCInterval != tc.want.GCInterval || got.MemTableSize != tc.want.MemTableSize ||
				got.NumMemtables != tc.want.NumMemtables || got.BlockCacheSize != tc.want.BlockCacheSize || got.IndexCacheSize != tc.want.IndexCacheSize {
				t.Fatalf("setDefaults: got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestOpenLockedInProcess(t *testing.T) {
	dir := t.TempDir()
	first := openT(t, Options{Dir: dir})
	_, err := Open(t.Context(), Options{Dir: dir, Logger: testLogger(t)})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
	want := `data directory "` + dir + `" is in use by another toolgate process`
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("second Open error %q does not say %q", err, want)
	}
	// The first store is unharmed, and once it is closed the directory opens.
	if err := first.KVPut(t.Context(), "p", "k", []byte("v"), 0); err != nil {
		t.Fatalf("KVPut on the first store: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := openT(t, Options{Dir: dir})
	if v, err := second.KVGet(t.Context(), "p", "k"); err != nil || string(v) != "v" {
		t.Fatalf("KVGet after reopening: %q, %v", v, err)
	}
}

func TestOpenEncryption(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	otherKey := bytes.Repeat([]byte{2}, 32)
	encryptedDir, plainDir := t.TempDir(), t.TempDir()
	const marker = "very-recognisable-plugin-value"
	for _, d := range []struct {
		dir string
		key []byte
	}{{encryptedDir, key}, {plainDir, nil}} {
		s := openT(t, Options{Dir: d.dir, EncryptionKey: d.key, SyncWrites: true})
		if err := s.KVPut(t.Context(), "p", "k", []byte(marker), 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if !dirContains(t, plainDir, marker) {
		t.Fatal("the unencrypted directory does not hold the value in the clear (the check below would prove nothing)")
	}
	if dirContains(t, encryptedDir, marker) {
		t.Fatal("the encrypted directory holds the value in the clear")
	}

	tests := []struct {
		name    string
		dir     string
		key     []byte
		wantErr error
		wantMsg string
	}{
		{"key of a wrong length", t.TempDir(), []byte("short"), ErrEncryptionKey, "key is 5 bytes, want 16, 24 or 32"},
		{"encrypted without a key", encryptedDir, nil, ErrEncryptionKey, "is encrypted and no encryption key was given"},
		{"encrypted with another key", encryptedDir, otherKey, ErrEncryptionKey, "different encryption key"},
		{"plain with a key", plainDir, key, ErrEncryptionKey, "different encryption key or without one"},
		{"encrypted with its key", encryptedDir, key, nil, ""},
		{"plain without a key", plainDir, nil, nil, ""},
		{"16-byte key", t.TempDir(), key[:16], nil, ""},
		{"24-byte key", t.TempDir(), key[:24], nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), Options{Dir: tc.dir, EncryptionKey: tc.key, Logger: testLogger(t)})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer s.Close()
				if tc.dir == encryptedDir || tc.dir == plainDir {
					v, err := s.KVGet(t.Context(), "p", "k")
					if err != nil || string(v) != marker {
						t.Fatalf("KVGet = %q, %v", v, err)
					}
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Open: got %v, want %v saying %q", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
}

func dirContains(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = found || bytes.Contains(b, []byte(s))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestOpenSmallMemTable(t *testing.T) {
	if _, err := Open(t.Context(), Options{Dir: t.TempDir(), MemTableSize: 64 << 10}); err == nil || !strings.Contains(err.Error(), "memtable size 65536 is below the minimum") {
		t.Fatalf("Open with a 64 KiB memtable: %v", err)
	}
	s := openT(t, Options{Dir: t.TempDir(), MemTableSize: minMemTableSize})
	if err := s.KVPut(t.Context(), "p", "k", make([]byte, store.MaxKVValueLen), 0); err != nil {
		t.Fatalf("KVPut of the largest value with the smallest memtable: %v", err)
	}
}

func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Open(ctx, Options{Dir: t.TempDir()}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with a cancelled context: %v", err)
	}
}

func TestBadgerLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := badgerLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	tests := []struct {
		name string
		log  func(string, ...any)
		want string // level in the output; "" for nothing
	}{
		{"error", l.Errorf, "level=ERROR"},
		{"warning", l.Warningf, "level=WARN"},
		{"info goes to debug", l.Infof, "level=DEBUG"},
		{"debug is below debug", l.Debugf, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			tc.log("message %d\n", 42)
			out := buf.String()
			if tc.want == "" {
				if out != "" {
					t.Fatalf("logged %q, want nothing", out)
				}
				return
			}
			if !strings.Contains(out, tc.want) || !strings.Contains(out, `msg="message 42"`) || !strings.Contains(out, "component=badger") {
				t.Fatalf("logged %q, want %s with the message", out, tc.want)
			}
		})
	}
}

func TestCloseWhileBusy(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir()})
	ctx := t.Context()
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			for j := 0; ; j++ {
				err := s.KVPut(ctx, "p", fmt.Sprintf("w%d-%d", i, j), []byte("v"), 0)
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := <-errs; !errors.Is(err, store.ErrClosed) {
			t.Fatalf("a write racing Close: got %v, want ErrClosed", err)
		}
	}
}
