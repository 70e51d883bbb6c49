package mcpserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

func TestTailAudit(t *testing.T) {
	a := newMemAudit()
	t0 := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	ctx := context.Background()
	// memAudit lists in append order; TailAudit expects newest first, so
	// append newest first.
	for _, r := range []store.AuditRecord{
		{Time: t0.Add(time.Second), UserID: "user_alice", Email: "alice@example.com", OrganizationID: "org_acme", ClientID: "c1", Plugin: "gated", Tool: "crash", Decision: "allow", Outcome: "trap", ErrorKind: "trap", Duration: 1500 * time.Microsecond},
		{Time: t0, UserID: "user_bob", Plugin: "gated", Tool: "paint", Decision: "deny", Outcome: "denied", Duration: 5 * time.Microsecond},
	} {
		if _, err := a.AppendAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	if err := TailAudit(ctx, &b, a, store.AuditQuery{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines:\n%s", len(lines), b.String())
	}
	wantFields := [][]string{
		{"TIME", "USER", "ORG", "CLIENT", "TOOL", "DECISION", "OUTCOME", "DURATION"},
		{"2026-11-26T06:00:00Z", "user_bob", "-", "-", "gated/paint", "deny", "denied", "5µs"},
		{"2026-11-26T06:00:01Z", "user_alice", "(alice@example.com)", "org_acme", "c1", "gated/crash", "allow", "trap", "1.5ms"},
	}
	for i, want := range wantFields {
		if got := strings.Fields(lines[i]); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("line %d = %q, want fields %v", i, lines[i], want)
		}
	}
}
