package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/toolgate/toolgate/core/auth/admin"
	"github.com/toolgate/toolgate/core/mcpserver"
	"github.com/toolgate/toolgate/core/store"
)

// auditPollInterval is how often "audit tail -f" asks for new records. A
// variable so tests can shorten it.
var auditPollInterval = time.Second

// auditFollowLookback is how far before the newest record it printed
// "audit tail -f" looks again. A record is stamped with the time its call
// started but appended when the call ends, so a slow call can appear after
// records newer than it; calls longer than this are missed by -f (they are
// still in the log).
const auditFollowLookback = 10 * time.Minute

// auditTailArgs is what "toolgate audit tail" was given.
type auditTailArgs struct {
	n      int
	user   string
	tool   string
	since  time.Time // zero: no bound
	json   bool
	follow bool
}

// audit dispatches "toolgate audit <command>"; SIGINT ends tail -f.
func audit(args, environ []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return auditCommand(ctx, args, environ, stdout, stderr)
}

// auditCommand is audit with the context that ends tail -f.
func auditCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		auditHelp(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		auditHelp(stdout)
		return exitOK
	case "tail":
	default:
		fmt.Fprintf(stderr, "toolgate audit: unknown command %q\n\n", args[0])
		auditHelp(stderr)
		return exitUsage
	}
	const name = "toolgate audit tail"
	a, cf, err := parseAuditTail(args[1:], time.Now())
	switch {
	case errors.Is(err, flag.ErrHelp):
		auditHelp(stdout)
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n\n", name, err)
		auditHelp(stderr)
		return exitUsage
	}
	client, ok := adminClient(name, cf, environ, stderr)
	if !ok {
		return exitError
	}
	if err := auditTail(ctx, client, a, stdout); err != nil {
		reportAdminError(stderr, name, client, err)
		return exitError
	}
	return exitOK
}

// parseAuditTail parses the arguments of "audit tail"; now resolves a
// -since duration.
func parseAuditTail(args []string, now time.Time) (auditTailArgs, *configFlagValues, error) {
	fs, cf := newConfigFlagSet("audit tail", io.Discard)
	a := auditTailArgs{}
	var since string
	fs.IntVar(&a.n, "n", admin.DefaultAuditLimit, "")
	fs.StringVar(&a.user, "user", "", "")
	fs.StringVar(&a.tool, "tool", "", "")
	fs.StringVar(&since, "since", "", "")
	fs.BoolVar(&a.json, "json", false, "")
	fs.BoolVar(&a.follow, "f", false, "")
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		return a, nil, err
	}
	if len(positional) > 0 {
		return a, nil, fmt.Errorf("unexpected argument %q", positional[0])
	}
	if a.n < 1 || a.n > admin.MaxAuditLimit {
		return a, nil, fmt.Errorf("-n %d is out of range: give 1 to %d", a.n, admin.MaxAuditLimit)
	}
	if a.since, err = parseSince(since, now); err != nil {
		return a, nil, err
	}
	return a, cf, nil
}

// parseSince reads -since: empty (no bound), a positive duration before
// now ("90s", "15m", "2h", "7d") or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		n, convErr := strconv.Atoi(days)
		if convErr == nil && n <= 1<<16 {
			d, err = time.Duration(n)*24*time.Hour, nil
		}
	}
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("-since %q is neither a positive duration such as 15m, 2h or 7d nor an RFC 3339 time such as 2026-11-26T06:00:00Z", s)
	}
	return now.Add(-d), nil
}

// auditSource is store.Audit over the admin endpoint, for
// mcpserver.TailAudit; it only reads.
type auditSource struct {
	c *admin.Client
	// keep, when set, picks what ListAudit returns from the records the
	// server sent (newest first).
	keep func([]store.AuditRecord) []store.AuditRecord
	// got is how many records the last ListAudit returned.
	got int
}

// ListAudit implements store.Audit.
func (a *auditSource) ListAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	recs, err := a.c.ListAudit(ctx, q)
	if err != nil {
		return nil, err
	}
	if a.keep != nil {
		recs = a.keep(recs)
	}
	a.got = len(recs)
	return recs, nil
}

// AppendAudit implements store.Audit; the admin endpoint does not write
// audit records.
func (*auditSource) AppendAudit(context.Context, store.AuditRecord) (store.AuditRecord, error) {
	return store.AuditRecord{}, errors.New("the audit log is read-only through the admin endpoint")
}

// auditFollower remembers what "audit tail -f" printed, so each poll
// prints only records it has not.
type auditFollower struct {
	seen   map[string]time.Time // ID → Time of records fetched before
	newest time.Time            // the newest Time fetched, or when following began
}

// first keeps the n newest of the records of the first listing and
// remembers all of them as seen: older ones that did not fit in n must not
// show up at the first poll.
func (f *auditFollower) first(n int) func([]store.AuditRecord) []store.AuditRecord {
	return func(recs []store.AuditRecord) []store.AuditRecord {
		f.fresh(recs)
		return recs[:min(n, len(recs))]
	}
}

// fresh returns the records not seen before (newest first) and remembers
// them.
func (f *auditFollower) fresh(recs []store.AuditRecord) []store.AuditRecord {
	var out []store.AuditRecord
	for _, r := range recs {
		if _, ok := f.seen[r.ID]; ok {
			continue
		}
		f.seen[r.ID] = r.Time
		if r.Time.After(f.newest) {
			f.newest = r.Time
		}
		out = append(out, r)
	}
	return out
}

// pollQuery returns the query of the next poll and forgets records too old
// for it to return again.
func (f *auditFollower) pollQuery(a auditTailArgs) store.AuditQuery {
	since := f.newest.Add(-auditFollowLookback)
	if since.Before(a.since) {
		since = a.since
	}
	for id, t := range f.seen {
		if t.Before(since) {
			delete(f.seen, id)
		}
	}
	return store.AuditQuery{Since: since, UserID: a.user, Tool: a.tool, Limit: admin.MaxAuditLimit}
}

// auditTail prints the records a selects and, with -f, new ones until ctx
// ends.
func auditTail(ctx context.Context, c *admin.Client, a auditTailArgs, stdout io.Writer) error {
	src := &auditSource{c: c}
	q := store.AuditQuery{Since: a.since, UserID: a.user, Tool: a.tool, Limit: a.n}
	if !a.follow {
		if a.json {
			return printAuditJSON(ctx, stdout, src, q)
		}
		var buf bytes.Buffer
		if err := mcpserver.TailAudit(ctx, &buf, src, q); err != nil {
			return err
		}
		if src.got == 0 {
			_, err := fmt.Fprintln(stdout, "no audit records")
			return err
		}
		_, err := stdout.Write(buf.Bytes())
		return err
	}

	f := &auditFollower{seen: map[string]time.Time{}, newest: time.Now()}
	src.keep = f.first(a.n)
	q.Limit = admin.MaxAuditLimit // remember the newest page; print a.n of it
	printBatch := func(q store.AuditQuery, header bool) error {
		if a.json {
			return printAuditJSON(ctx, stdout, src, q)
		}
		var buf bytes.Buffer
		if err := mcpserver.TailAudit(ctx, &buf, src, q); err != nil {
			return err
		}
		out := buf.Bytes()
		if !header {
			if src.got == 0 {
				return nil
			}
			_, out, _ = bytes.Cut(out, []byte("\n"))
		}
		_, err := stdout.Write(out)
		return err
	}
	if err := printBatch(q, true); err != nil {
		return err
	}
	src.keep = f.fresh
	tick := time.NewTicker(auditPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := printBatch(f.pollQuery(a), false); err != nil {
			if ctx.Err() != nil {
				return nil // interrupted during a poll
			}
			return err
		}
	}
}

// printAuditJSON prints the records q selects, oldest first, one
// admin.AuditEntry JSON object per line.
func printAuditJSON(ctx context.Context, w io.Writer, src store.Audit, q store.AuditQuery) error {
	recs, err := src.ListAudit(ctx, q)
	if err != nil {
		return fmt.Errorf("list audit records: %w", err)
	}
	enc := json.NewEncoder(w)
	for _, r := range slices.Backward(recs) {
		if err := enc.Encode(admin.NewAuditEntry(r)); err != nil {
			return fmt.Errorf("write audit records: %w", err)
		}
	}
	return nil
}

func auditHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: toolgate audit tail [-n N] [-user ID] [-tool NAME] [-since DURATION|TIME] [-json] [-f] [flags]

Print the audit log of a running toolgate: one line per MCP tool call or
denial (time, user, organization, client, tool, decision, outcome,
duration), oldest first. With -f, keep printing new records as they come
until interrupted (Ctrl-C).
`)
	printAdminConnection(w)
	fmt.Fprintf(w, `
Flags:
  -n N
    	print the N most recent matching records, 1 to %d (default %d)
  -user ID
    	only calls by this user (a user ID such as user_01JD4XZ7Q2, as printed)
  -tool NAME
    	only calls of this tool (the part after "plugin/" in the TOOL column)
  -since DURATION|TIME
    	only records from this long ago (90s, 15m, 2h, 7d) or since this
    	RFC 3339 time (2026-11-26T06:00:00Z)
  -json
    	print one JSON object per line instead of a table
  -f
    	follow: after the recent records, print new ones every second
    	(a call that runs longer than %d minutes is not followed)
`, admin.MaxAuditLimit, admin.DefaultAuditLimit, int(auditFollowLookback.Minutes()))
	printAdminConfigFlags(w)
	fmt.Fprint(w, `
Examples:
  toolgate audit tail
  toolgate audit tail -n 200 -since 1h
  toolgate audit tail -user user_01JD4XZ7Q2 -tool paint -f
  toolgate audit tail -since 2026-11-26T00:00:00Z -json | jq 'select(.decision == "deny")'
`)
}
