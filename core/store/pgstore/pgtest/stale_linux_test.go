package pgtest

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// removeStale deletes only old cluster directories without a running
// postmaster: a test binary that died left them behind.
func TestRemoveStale(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	old := time.Now().Add(-2 * staleAfter)
	mk := func(name, pid string, mtime time.Time) string {
		t.Helper()
		d := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if pid != "" {
			if err := os.WriteFile(filepath.Join(d, "data", "postmaster.pid"), []byte(pid+"\n/data\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(d, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return d
	}
	gone := []string{
		mk(dirPattern+"no-pid", "", old),
		mk(dirPattern+"dead", "2147483646", old),
	}
	kept := []string{
		mk(dirPattern+"fresh", "", time.Now()),
		mk(dirPattern+"running", strconv.Itoa(os.Getpid()), old),
		mk("someone-else", "", old),
	}
	removeStale()
	for _, d := range gone {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s was not removed (%v)", filepath.Base(d), err)
		}
	}
	for _, d := range kept {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(d), err)
		}
	}
}
