package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/auth/admin"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/badgerstore"
)

func TestParseAuditTail(t *testing.T) {
	now := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		args    []string
		want    auditTailArgs
		wantErr string
	}{
		{nil, auditTailArgs{n: admin.DefaultAuditLimit}, ""},
		{[]string{"-n", "5", "-user", "user_1", "-tool", "paint", "-json", "-f"}, auditTailArgs{n: 5, user: "user_1", tool: "paint", json: true, follow: true}, ""},
		{[]string{"-since", "90m"}, auditTailArgs{n: admin.DefaultAuditLimit, since: now.Add(-90 * time.Minute)}, ""},
		{[]string{"-since", "7d", "-n", "1000"}, auditTailArgs{n: 1000, since: now.Add(-7 * 24 * time.Hour)}, ""},
		{[]string{"-since", "2026-11-25T10:00:00+01:00"}, auditTailArgs{n: admin.DefaultAuditLimit, since: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}, ""},
		{[]string{"-data-dir", "d", "-n", "3"}, auditTailArgs{n: 3}, ""},
		{[]string{"-n", "0"}, auditTailArgs{}, "-n 0 is out of range: give 1 to 1000"},
		{[]string{"-n", "1001"}, auditTailArgs{}, "-n 1001 is out of range"},
		{[]string{"-n", "x"}, auditTailArgs{}, "invalid value"},
		{[]string{"-since", "yesterday"}, auditTailArgs{}, `-since "yesterday" is neither`},
		{[]string{"-since", "-5m"}, auditTailArgs{}, "positive duration"},
		{[]string{"-since", "0d"}, auditTailArgs{}, "positive duration"},
		{[]string{"-since", "2026-11-25"}, auditTailArgs{}, "RFC 3339"},
		{[]string{"extra"}, auditTailArgs{}, `unexpected argument "extra"`},
		{[]string{"-follow"}, auditTailArgs{}, "flag provided but not defined: -follow"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, cf, err := parseAuditTail(tt.args, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || cf == nil {
				t.Fatalf("error %v", err)
			}
			if !got.since.Equal(tt.want.since) {
				t.Errorf("since %v, want %v", got.since, tt.want.since)
			}
			got.since, tt.want.since = time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// auditServer is the admin endpoint over a real store with audit records,
// as "toolgate serve" runs it.
type auditServer struct {
	st      store.Store
	dataDir string
	addr    string
	recs    []store.AuditRecord // appended by add, oldest first
}

func startAuditServer(t *testing.T) *auditServer {
	t.Helper()
	t.Chdir(t.TempDir()) // no toolgate.toml
	dataDir := filepath.Join(t.TempDir(), "data")
	st, err := badgerstore.Open(context.Background(), badgerstore.Options{Dir: dataDir, GCInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	token, err := admin.LoadOrCreateToken(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.NewHandler(admin.Config{Token: token, Logger: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &auditServer{st: st, dataDir: dataDir, addr: ts.Listener.Addr().String()}
}

// add appends a record of user calling tool at time at.
func (as *auditServer) add(t *testing.T, at time.Time, user, tool, decision string) store.AuditRecord {
	t.Helper()
	r := store.AuditRecord{Time: at, UserID: user, Email: strings.TrimPrefix(user, "user_") + "@example.com", ClientID: "client_x",
		Plugin: "demo", Tool: tool, Decision: decision, Outcome: map[string]string{"allow": "ok", "deny": "denied"}[decision],
		Duration: 1500 * time.Microsecond}
	got, err := as.st.AppendAudit(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	as.recs = append(as.recs, got)
	return got
}

func (as *auditServer) tail(t *testing.T, ctx context.Context, stdout *syncWriter, args ...string) (int, string) {
	t.Helper()
	args = append(append([]string{"tail"}, args...), "-data-dir", as.dataDir, "-admin-listen", as.addr)
	var errOut strings.Builder
	code := auditCommand(ctx, args, nil, stdout, &errOut)
	return code, errOut.String()
}

// rowsOf returns the table's lines after the header, checking it.
func rowsOf(t *testing.T, out string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[0], "DECISION") {
		t.Fatalf("no table header in %q", out)
	}
	return lines[1:]
}

func TestAuditTail(t *testing.T) {
	as := startAuditServer(t)
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	as.add(t, base, "user_alice", "add", "allow")
	as.add(t, base.Add(time.Minute), "user_bob", "paint", "deny")
	as.add(t, base.Add(90*time.Minute), "user_alice", "paint", "allow")
	as.add(t, base.Add(100*time.Minute), "user_bob", "add", "allow")

	tests := []struct {
		args []string
		want []int // indexes into as.recs, in printed order
	}{
		{nil, []int{0, 1, 2, 3}},
		{[]string{"-n", "2"}, []int{2, 3}},
		{[]string{"-user", "user_alice"}, []int{0, 2}},
		{[]string{"-tool", "paint"}, []int{1, 2}},
		{[]string{"-tool", "paint", "-user", "user_bob"}, []int{1}},
		{[]string{"-since", "1h"}, []int{2, 3}},
		{[]string{"-since", base.Add(time.Minute).Format(time.RFC3339)}, []int{1, 2, 3}},
		{[]string{"-user", "user_carol"}, nil},
	}
	for _, tt := range tests {
		t.Run("table "+strings.Join(tt.args, " "), func(t *testing.T) {
			var out syncWriter
			code, errOut := as.tail(t, t.Context(), &out, tt.args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if tt.want == nil {
				if out.String() != "no audit records\n" {
					t.Errorf("output %q, want no audit records", out.String())
				}
				return
			}
			rows := rowsOf(t, out.String())
			if len(rows) != len(tt.want) {
				t.Fatalf("%d rows, want %d:\n%s", len(rows), len(tt.want), out.String())
			}
			for i, row := range rows {
				r := as.recs[tt.want[i]]
				for _, field := range []string{r.Time.Format(time.RFC3339), r.UserID + " (" + r.Email + ")", "demo/" + r.Tool, r.Decision, r.Outcome, "1.5ms"} {
					if !strings.Contains(row, field) {
						t.Errorf("row %d %q lacks %q", i, row, field)
					}
				}
			}
		})
		t.Run("json "+strings.Join(tt.args, " "), func(t *testing.T) {
			var out syncWriter
			code, errOut := as.tail(t, t.Context(), &out, append(tt.args, "-json")...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(tt.want) == 0 {
				lines = nil
				if out.String() != "" {
					t.Errorf("output %q, want none", out.String())
				}
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tt.want), out.String())
			}
			for i, line := range lines {
				var e admin.AuditEntry
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("line %d %q: %v", i, line, err)
				}
				if r := as.recs[tt.want[i]]; e.ID != r.ID || e.UserID != r.UserID || e.Tool != r.Tool || e.DurationNS != int64(r.Duration) || !e.Time.Equal(r.Time) {
					t.Errorf("line %d = %+v, want record %+v", i, e, r)
				}
			}
		})
	}
}

// syncWriter collects a command's output and tells waiters when it grows.
type syncWriter struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed == nil {
		w.changed = make(chan struct{}, 1)
	}
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// waitFor waits until the output contains s.
func (w *syncWriter) waitFor(t *testing.T, s string) string {
	t.Helper()
	w.mu.Lock()
	if w.changed == nil {
		w.changed = make(chan struct{}, 1)
	}
	changed := w.changed
	w.mu.Unlock()
	deadline := time.After(20 * time.Second)
	for {
		if out := w.String(); strings.Contains(out, s) {
			return out
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("output never contained %q:\n%s", s, w.String())
		}
	}
}

func TestAuditTailFollow(t *testing.T) {
	old := auditPollInterval
	auditPollInterval = 5 * time.Millisecond
	t.Cleanup(func() { auditPollInterval = old })
	for _, asJSON := range []bool{false, true} {
		name := "table"
		if asJSON {
			name = "json"
		}
		t.Run(name, func(t *testing.T) {
			as := startAuditServer(t)
			now := time.Now().UTC().Truncate(time.Millisecond)
			as.add(t, now.Add(-3*time.Minute), "user_alice", "paint", "allow") // older than -n 2
			as.add(t, now.Add(-2*time.Minute), "user_bob", "paint", "deny")
			as.add(t, now.Add(-time.Minute), "user_alice", "paint", "allow")
			key := func(r store.AuditRecord) string { // how a record shows in the output
				if asJSON {
					return `"id":"` + r.ID + `"`
				}
				return r.Time.Format(time.RFC3339) + "  " + r.UserID
			}

			ctx, cancel := context.WithCancel(t.Context())
			var out syncWriter
			done := make(chan int, 1)
			var errOut string
			go func() {
				args := []string{"-f", "-n", "2", "-tool", "paint"}
				if asJSON {
					args = append(args, "-json")
				}
				code, e := as.tail(t, ctx, &out, args...)
				errOut = e
				done <- code
			}()
			out.waitFor(t, key(as.recs[2]))
			// A record of another tool, then a matching one, then one of a
			// call that started before the newest printed (a slow call).
			other := as.add(t, now, "user_bob", "add", "allow")
			fresh := as.add(t, now.Add(time.Second), "user_bob", "paint", "allow")
			out.waitFor(t, key(fresh))
			slow := as.add(t, now.Add(-30*time.Second), "user_carol", "paint", "allow")
			got := out.waitFor(t, key(slow))
			cancel()
			if code := <-done; code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}

			for _, r := range []store.AuditRecord{as.recs[1], as.recs[2], fresh, slow} {
				if n := strings.Count(got, key(r)); n != 1 {
					t.Errorf("record %s printed %d times, want once:\n%s", r.ID, n, got)
				}
			}
			for _, r := range []store.AuditRecord{as.recs[0], other} {
				if strings.Contains(got, key(r)) {
					t.Errorf("record %s (%s at %v) printed:\n%s", r.ID, r.Tool, r.Time, got)
				}
			}
			if asJSON {
				if strings.Contains(got, "TIME") || strings.Count(got, "\n") != 4 {
					t.Errorf("want 4 JSON lines:\n%s", got)
				}
				return
			}
			if n := strings.Count(got, "TIME"); n != 1 {
				t.Errorf("header printed %d times:\n%s", n, got)
			}
			if rows := rowsOf(t, got); len(rows) != 4 {
				t.Errorf("%d rows, want 4:\n%s", len(rows), got)
			}
		})
	}
}

// The composed server serves the audit endpoint on its admin listener.
func TestAuditTailLiveServer(t *testing.T) {
	ls := startLiveServer(t)
	code, out, errOut := ls.cli(t, "audit", "tail")
	if code != exitOK || out != "no audit records\n" {
		t.Errorf("audit tail = %d %q %q", code, out, errOut)
	}
	code, _, errOut = ls.cli(t, "audit", "tail", "-since", "10m", "-user", "user_nobody", "-json")
	if code != exitOK || errOut != "" {
		t.Errorf("audit tail -json = %d %q", code, errOut)
	}
}
