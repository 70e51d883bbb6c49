package badgerstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/toolgate/toolgate/core/store"
)

// Environment of the child processes the crash and memory tests start.
const (
	envCrashDir   = "TOOLGATE_BADGERSTORE_CRASH_DIR"
	envCrashRound = "TOOLGATE_BADGERSTORE_CRASH_ROUND"
	envIdleDir    = "TOOLGATE_BADGERSTORE_IDLE_DIR"
)

const crashClient = "crash-client"

// crashTokens are the tokens the crash child issues for a code: derived
// from the code so the parent can check them for codes it never heard of.
func crashTokens(codeHash, grantID string) []store.Token {
	exp := time.Now().Add(24 * time.Hour)
	return []store.Token{
		{Hash: store.HashSecret(codeHash + "/access"), Kind: store.AccessToken, GrantID: grantID, ClientID: crashClient, CreatedAt: time.Now(), ExpiresAt: exp},
		{Hash: store.HashSecret(codeHash + "/refresh"), Kind: store.RefreshToken, GrantID: grantID, ClientID: crashClient, CreatedAt: time.Now(), ExpiresAt: exp},
	}
}

// TestCrashChild is the child process of TestCrash: it writes until it is
// killed, printing one line per write after the write returned nil.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("only runs as the child of TestCrash")
	}
	round := os.Getenv(envCrashRound)
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := Open(ctx, Options{Dir: dir, SyncWrites: true, GCInterval: -1, Logger: logger})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fail := func(what string, err error) {
		fmt.Println("error", what, err)
		os.Exit(2)
	}
	err = s.CreateClient(ctx, store.Client{ID: crashClient, CreatedAt: time.Now()})
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		fail("create client", err)
	}
	err = s.CreateGrant(ctx, store.Grant{ID: "counter", ClientID: crashClient, UserID: "u", Role: "0", CreatedAt: time.Now()})
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		fail("create counter grant", err)
	}
	fmt.Println("ready")
	lastGrant := ""
	for i := 0; ; i++ {
		id := fmt.Sprintf("r%s-%d", round, i)
		switch {
		case i%5 == 0 || lastGrant == "":
			g := store.Grant{ID: id, ClientID: crashClient, UserID: "u", Email: "u@example.com", Permissions: []string{"p"}, CreatedAt: time.Now()}
			if err := s.CreateGrant(ctx, g); err != nil {
				fail("create grant", err)
			}
			lastGrant = id
			fmt.Println("grant", id)
		case i%5 == 1:
			code := store.HashSecret(id)
			if err := s.CreateAuthCode(ctx, store.AuthCode{CodeHash: code, GrantID: lastGrant, ClientID: crashClient, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				fail("create code", err)
			}
			if _, err := s.ExchangeAuthCode(ctx, code, crashTokens(code, lastGrant), time.Time{}); err != nil {
				fail("exchange", err)
			}
			fmt.Println("exchange", code, lastGrant)
		case i%5 == 2:
			g, err := s.UpdateGrant(ctx, "counter", func(g *store.Grant) error {
				n, err := strconv.Atoi(g.Role)
				g.Role = strconv.Itoa(n + 1)
				return err
			})
			if err != nil {
				fail("update grant", err)
			}
			fmt.Println("update", g.Role)
		case i%5 == 3:
			if err := s.KVPut(ctx, "crash", id, []byte("value-"+id), 0); err != nil {
				fail("kv put", err)
			}
			fmt.Println("kv", id)
		default:
			r, err := s.AppendAudit(ctx, store.AuditRecord{UserID: "u", Tool: id, Decision: "allow", Outcome: "ok"})
			if err != nil {
				fail("append audit", err)
			}
			fmt.Println("audit", r.ID, id)
		}
	}
}

// TestCrash kills a writing child process at random points with SIGKILL
// and checks that every write it acknowledged survived, and that nothing
// half-written is visible.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	type ack struct{ kind, a, b string }
	var acked []ack
	maxCounter := 0
	rounds := 8
	for round := range rounds {
		killAfter := 1 + rand.IntN(300)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashRound+"="+strconv.Itoa(round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		n := 0
		// record notes one line of the child's output; it reports whether
		// the line acknowledged a write.
		record := func(line string) bool {
			f := strings.Fields(line)
			switch {
			case len(f) == 0:
				return false
			case f[0] == "error":
				t.Fatalf("round %d: child failed: %s", round, line)
			case f[0] == "ready":
				return false
			case f[0] == "update":
				c, err := strconv.Atoi(f[1])
				if err != nil {
					t.Fatalf("bad line %q", line)
				}
				maxCounter = max(maxCounter, c)
			case len(f) == 3:
				acked = append(acked, ack{f[0], f[1], f[2]})
			case len(f) == 2:
				acked = append(acked, ack{f[0], f[1], ""})
			default:
				return false // the testing package's own output
			}
			return true
		}
		for n < killAfter && lines.Scan() {
			if record(lines.Text()) {
				n++
			}
		}
		if n < killAfter {
			t.Fatalf("round %d: child stopped after %d writes: %v", round, n, lines.Err())
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// The child kept writing while we read: every line it printed
		// before it died acknowledges a write too, so drain the pipe
		// (it reaches EOF when the child is gone) before Wait closes it.
		for lines.Scan() {
			if record(lines.Text()) {
				n++
			}
		}
		_ = cmd.Wait()
		t.Logf("round %d: killed the child after %d acknowledged writes", round, n)

		s, err := Open(t.Context(), Options{Dir: dir, Logger: testLogger(t), GCInterval: -1})
		if err != nil {
			t.Fatalf("round %d: reopen after the crash: %v", round, err)
		}
		ctx := t.Context()
		audit, err := s.ListAudit(ctx, store.AuditQuery{Limit: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		auditIDs := map[string]string{}
		for _, r := range audit {
			auditIDs[r.ID] = r.Tool
		}
		for _, a := range acked {
			switch a.kind {
			case "grant":
				if _, err := s.GetGrant(ctx, a.a); err != nil {
					t.Errorf("round %d: acknowledged grant %s: %v", round, a.a, err)
				}
			case "exchange":
				for _, tok := range crashTokens(a.a, a.b) {
					if _, err := s.GetToken(ctx, tok.Hash); err != nil {
						t.Errorf("round %d: token of acknowledged exchange %s: %v", round, a.a, err)
					}
				}
			case "kv":
				if v, err := s.KVGet(ctx, "crash", a.a); err != nil || string(v) != "value-"+a.a {
					t.Errorf("round %d: acknowledged kv %s: %q, %v", round, a.a, v, err)
				}
			case "audit":
				if auditIDs[a.a] != a.b {
					t.Errorf("round %d: acknowledged audit record %s missing", round, a.a)
				}
			default:
				t.Fatalf("unknown ack %v", a)
			}
		}
		g, err := s.GetGrant(ctx, "counter")
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := strconv.Atoi(g.Role); c < maxCounter || c > maxCounter+1 {
			t.Errorf("round %d: counter is %d, %d increments were acknowledged", round, c, maxCounter)
		}
		problems, err := checkConsistent(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("round %d: %s", round, p)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if t.Failed() {
			return
		}
	}
}

// checkConsistent scans the raw database and lists what is wrong: every record decodes, every
// index entry points at its record, every token's grant exists, and every
// auth code the crash child used has all its tokens and no unused one has any.
func checkConsistent(s *Store) ([]string, error) {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	err := s.db.View(func(txn *badger.Txn) error {
		exists := func(k []byte) bool { _, err := txn.Get(k); return err == nil }
		for _, p := range primaryPrefixes {
			var err error
			switch p {
			case prefixKV:
				for _, k := range keysWithPrefix(txn, []byte(p)) {
					item, _ := txn.Get(k)
					if verr := item.Value(func(b []byte) error { _, _, err := decodeKV(b); return err }); verr != nil {
						report("kv %q: %v", printableKey(k), verr)
					}
				}
			case prefixToken:
				err = each(txn, []byte(p), func(k []byte, tok store.Token) (bool, error) {
					if !exists(key(prefixGrant, tok.GrantID)) {
						report("token %s has no grant %s", tok.Hash, tok.GrantID)
					}
					if !exists(tokenByGrantKey(tok.GrantID, tok.Hash)) {
						report("token %s is not indexed under its grant", tok.Hash)
					}
					return true, nil
				})
			case prefixCode:
				err = each(txn, []byte(p), func(k []byte, c store.AuthCode) (bool, error) {
					for _, tok := range crashTokens(c.CodeHash, c.GrantID) {
						if got := exists(key(prefixToken, tok.Hash)); got != !c.UsedAt.IsZero() {
							report("code used=%v but its token exists=%v", !c.UsedAt.IsZero(), got)
						}
					}
					return true, nil
				})
			case prefixGrant:
				err = each(txn, []byte(p), func(k []byte, g store.Grant) (bool, error) {
					for _, ik := range grantIndexKeys(g) {
						if !exists(ik) {
							report("grant %s misses index entry %q", g.ID, printableKey(ik))
						}
					}
					return true, nil
				})
			default:
				err = each(txn, []byte(p), func([]byte, struct{ ExpiresAt time.Time }) (bool, error) { return true, nil })
			}
			if err != nil {
				report("prefix %s: %v", p, err)
			}
		}
		for _, ip := range []string{prefixGrantByUser, prefixGrantByEmail, prefixGrantByClient} {
			for _, k := range keysWithPrefix(txn, []byte(ip)) {
				_, tail, _ := splitIndexKey(k, ip)
				if !exists(key(prefixGrant, tail[8:])) {
					report("index entry %q has no grant", printableKey(k))
				}
			}
		}
		for _, k := range keysWithPrefix(txn, []byte(prefixTokenByGrant)) {
			_, hash, _ := splitIndexKey(k, prefixTokenByGrant)
			if !exists(key(prefixToken, hash)) {
				report("index entry %q has no token", printableKey(k))
			}
		}
		return nil
	})
	return problems, err
}

// TestCheckConsistentDetects makes sure the crash test's checker finds
// half-written state.
func TestCheckConsistentDetects(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir(), GCInterval: -1})
	ctx := t.Context()
	if err := s.CreateClient(ctx, store.Client{ID: crashClient}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGrant(ctx, store.Grant{ID: "g", ClientID: crashClient, UserID: "u", Email: "e"}); err != nil {
		t.Fatal(err)
	}
	used, unused := store.HashSecret("used"), store.HashSecret("unused")
	for _, c := range []string{used, unused} {
		if err := s.CreateAuthCode(ctx, store.AuthCode{CodeHash: c, GrantID: "g"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ExchangeAuthCode(ctx, used, crashTokens(used, "g"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if problems, err := checkConsistent(s); err != nil || len(problems) != 0 {
		t.Fatalf("a consistent store: %q, %v", problems, err)
	}
	tokens := crashTokens(unused, "g")
	orphan := store.Token{Hash: "orphan", GrantID: "missing"}
	err := s.db.Update(func(txn *badger.Txn) error {
		return errors.Join(
			del(txn, key(prefixToken, crashTokens(used, "g")[0].Hash)),           // a used code missing a token
			write(txn, key(prefixToken, tokens[0].Hash), tokens[0], time.Time{}), // an unused code with a token
			write(txn, key(prefixToken, "orphan"), orphan, time.Time{}),          // a token without grant or index
			del(txn, grantByEmailKey("e", time.Time{}, "g")),                     // a grant missing an index entry
			setEntry(txn, []byte(prefixKV+"p/k"), []byte{9}, time.Time{}),        // an undecodable value
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	problems, err := checkConsistent(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"code used=true but its token exists=false", "code used=false but its token exists=true", "token orphan has no grant missing", "token orphan is not indexed", "grant g misses index entry", "kv \"k/p/k\""}
	for _, w := range want {
		found := false
		for _, p := range problems {
			found = found || strings.Contains(p, w)
		}
		if !found {
			t.Errorf("checkConsistent did not report %q; it reported %q", w, problems)
		}
	}
}
