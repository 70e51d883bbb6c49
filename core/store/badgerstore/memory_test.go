package badgerstore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// vmRSS returns the process's resident set size in bytes (Linux only).
func vmRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// TestIdleChild is the child process of TestIdleMemory: it opens a store,
// writes a realistic amount of data, lets it idle and prints its RSS.
func TestIdleChild(t *testing.T) {
	dir := os.Getenv(envIdleDir)
	if dir == "" {
		t.Skip("only runs as the child of TestIdleMemory")
	}
	ctx := context.Background()
	runtime.GC()
	before, err := vmRSS()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Options{Dir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opened, err := vmRSS()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, store.Client{ID: "c", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		id := strconv.Itoa(i)
		g := store.Grant{ID: id, ClientID: "c", UserID: "u" + id, Email: id + "@example.com", Permissions: []string{"a", "b"}, UpstreamRefreshToken: make([]byte, 256), CreatedAt: time.Now()}
		if err := s.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		code := store.HashSecret("code" + id)
		if err := s.CreateAuthCode(ctx, store.AuthCode{CodeHash: code, GrantID: id, ClientID: "c", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ExchangeAuthCode(ctx, code, crashTokens(code, id), time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := s.KVPut(ctx, "p", "k"+id, make([]byte, 512), 0); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
	idle, err := vmRSS()
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("rss before_open=%d after_open=%d idle_after_writes=%d heap_inuse=%d\n", before, opened, idle, ms.HeapInuse)
}

// TestIdleMemory measures, in a fresh process, what an open store costs in
// resident memory after 2000 grants with tokens and plugin values.
func TestIdleMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envIdleDir+"="+t.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var before, opened, idle, heap int64
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "rss ") {
			if _, err := fmt.Sscanf(line, "rss before_open=%d after_open=%d idle_after_writes=%d heap_inuse=%d", &before, &opened, &idle, &heap); err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
		}
	}
	if idle == 0 {
		t.Fatalf("child printed no measurement:\n%s", out)
	}
	const mib = 1 << 20
	t.Logf("RSS: %.1f MiB before Open, %.1f MiB right after, %.1f MiB idle after 2000 grants+tokens+values (Go heap in use %.1f MiB); race detector on: %v",
		float64(before)/mib, float64(opened)/mib, float64(idle)/mib, float64(heap)/mib, raceEnabled)
	if !raceEnabled && idle-before > 64*mib {
		t.Fatalf("the store costs %.1f MiB of RSS, want under 64 MiB", float64(idle-before)/mib)
	}
}
