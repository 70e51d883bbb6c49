package mcpserver

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// TailAudit writes the records q selects, oldest first, one aligned line
// each: what `toolgate audit tail` prints.
//
//	TIME                  USER                          ORG       CLIENT       TOOL         DECISION  OUTCOME    DURATION
//	2026-11-26T06:00:00Z  user_bob (bob@example.com)    org_acme  client_abc   gated/paint  deny      denied     5µs
func TailAudit(ctx context.Context, w io.Writer, a store.Audit, q store.AuditQuery) error {
	recs, err := a.ListAudit(ctx, q)
	if err != nil {
		return fmt.Errorf("list audit records: %w", err)
	}
	slices.Reverse(recs) // ListAudit is newest first
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tUSER\tORG\tCLIENT\tTOOL\tDECISION\tOUTCOME\tDURATION")
	for _, r := range recs {
		user := r.UserID
		if r.Email != "" {
			user += " (" + r.Email + ")"
		}
		tool := r.Tool
		if r.Plugin != "" {
			tool = r.Plugin + "/" + r.Tool
		}
		outcome := r.Outcome
		if r.ErrorKind != "" && r.ErrorKind != r.Outcome {
			outcome += " (" + r.ErrorKind + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Time.UTC().Format(time.RFC3339), user, dash(r.OrganizationID), dash(r.ClientID), tool, r.Decision, outcome, r.Duration.Round(time.Microsecond))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write audit records: %w", err)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
