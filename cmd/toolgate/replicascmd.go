package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/toolgate/toolgate/core/replica"
)

// replicas runs "toolgate replicas": the replicas sharing the running
// server's store, each with the plugin set it serves.
func replicas(args, environ []string, stdout, stderr io.Writer) int {
	const name = "toolgate replicas"
	fs, cf := newConfigFlagSet("replicas", stderr)
	var asJSON bool
	fs.BoolVar(&asJSON, "json", false, "")
	positional, err := parseInterleaved(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		replicasHelp(stdout)
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n\n", name, err)
		replicasHelp(stderr)
		return exitUsage
	case len(positional) > 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n\n", name, positional[0])
		replicasHelp(stderr)
		return exitUsage
	}
	client, ok := adminClient(name, cf, environ, stderr)
	if !ok {
		return exitError
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	rs, err := client.ListReplicas(ctx)
	if err != nil {
		reportAdminError(stderr, name, client, err)
		return exitError
	}
	if asJSON {
		err = writeJSON(stdout, rs)
	} else {
		err = printReplicas(stdout, rs, time.Now())
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitError
	}
	return exitOK
}

// printReplicas writes the replica table and says whether the replicas
// serve the same plugin set, and if not, what each set holds.
func printReplicas(w io.Writer, rs []replica.Info, now time.Time) error {
	if len(rs) == 0 {
		_, err := fmt.Fprintln(w, "no replicas (the server writes its record within seconds of starting)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDR\tVERSION\tSTARTED\tLAST SEEN\tPLUGIN SET\tPLUGINS")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, orDash(r.Addr), orDash(r.Version), stamp(r.StartedAt),
			replicaAgo(now, r.LastSeen), replicaShortDigest(r.PluginDigest), orDash(replicaPluginNames(r.Plugins)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	sets := replica.Digests(rs)
	if len(sets) == 1 && len(rs) == 1 {
		_, err := fmt.Fprintf(w, "\n1 replica, plugin set %s\n", orDash(sets[0].Digest))
		return err
	}
	if len(sets) == 1 {
		_, err := fmt.Fprintf(w, "\nall %d replicas serve the same plugin set (%s)\n", len(rs), orDash(sets[0].Digest))
		return err
	}
	fmt.Fprintf(w, "\nWARNING: the replicas serve %d different plugin sets; a caller may see different tools depending on the replica:\n", len(sets))
	for _, s := range sets {
		var first replica.Info
		var who []string
		for _, r := range rs {
			if r.PluginDigest == s.Digest {
				if len(who) == 0 {
					first = r
				}
				who = append(who, r.ID)
			}
		}
		fmt.Fprintf(w, "  %s on %s:\n", orDash(s.Digest), strings.Join(who, ", "))
		if len(first.Plugins) == 0 {
			fmt.Fprintln(w, "    (no plugins)")
		}
		for _, p := range first.Plugins {
			fmt.Fprintf(w, "    %s %s wasm sha256 %s, tools %s\n", p.Name, orDash(p.Version), replicaShortHash(p.SHA256), orDash(strings.Join(p.Tools, ",")))
		}
	}
	_, err := fmt.Fprintln(w, "Make the plugin folders and plugins.toml the same on every replica, then send each one SIGHUP.")
	return err
}

func replicaPluginNames(ps []replica.Plugin) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return strings.Join(names, ",")
}

// replicaShortDigest shortens "sha256:<64 hex>" to its first 12 hex digits, enough
// to tell sets apart in a table.
func replicaShortDigest(d string) string {
	if hexPart, ok := strings.CutPrefix(d, "sha256:"); ok {
		return "sha256:" + replicaShortHash(hexPart)
	}
	return orDash(d)
}

func replicaShortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return orDash(h)
}

// replicaAgo says how long before now t was, in whole seconds.
func replicaAgo(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func replicasHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: toolgate replicas [-json] [flags]

List the toolgate replicas that share the running server's store (one on
Badger; every replica on a shared PostgreSQL), each with the plugin set it
serves, and say whether they all serve the same one. Each replica rewrites
its record every 10 seconds and deletes it when it stops; a replica that
died without stopping disappears within 30 seconds.

The PLUGIN SET column is the digest /readyz reports (and the
toolgate_plugin_set_info metric's label): replicas with the same digest
serve the same plugin files with the same tools and access rules.
`)
	printAdminConnection(w)
	fmt.Fprint(w, `
Flags:
  -json
    	print JSON instead of a table (every field, full digests and hashes)
`)
	printAdminConfigFlags(w)
	fmt.Fprint(w, `
Examples:
  toolgate replicas
  toolgate replicas -json | jq -r '.[] | [.id, .plugin_digest] | @tsv'
`)
}
