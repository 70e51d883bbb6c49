package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/toolgate/toolgate/core/auth/admin"
)

// adminTimeout bounds one operator command's call to the admin endpoint.
const adminTimeout = 15 * time.Second

// adminCommand is one "toolgate grants|clients" subcommand.
type adminCommand struct {
	name    string
	summary string
	usage   string // the arguments after the command name
	// maxArgs is how many positional arguments it takes (0 or 1).
	maxArgs int
	run     func(ctx context.Context, c *admin.Client, a adminArgs, stdout io.Writer) error
}

// adminArgs is what a subcommand was given.
type adminArgs struct {
	user string
	json bool
	arg  string // the positional argument, if any
}

var grantCommands = []adminCommand{
	{name: "list", summary: "list live grants (who signed in to which client)", usage: "[-user EMAIL] [-json]", run: grantsList},
	{name: "revoke", summary: "revoke one grant by id, or every grant of a user", usage: "ID | -user EMAIL", maxArgs: 1, run: grantsRevoke},
}

var clientCommands = []adminCommand{
	{name: "list", summary: "list registered OAuth clients", usage: "[-json]", run: clientsList},
	{name: "delete", summary: "delete a client with its grants and tokens", usage: "ID", maxArgs: 1, run: clientsDelete},
}

// grants dispatches "toolgate grants <command>".
func grants(args, environ []string, stdout, stderr io.Writer) int {
	return adminGroup("grants", grantCommands, grantsHelp, args, environ, stdout, stderr)
}

// clients dispatches "toolgate clients <command>".
func clients(args, environ []string, stdout, stderr io.Writer) int {
	return adminGroup("clients", clientCommands, clientsHelp, args, environ, stdout, stderr)
}

func adminGroup(group string, cmds []adminCommand, help func(io.Writer), args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		help(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		help(stdout)
		return exitOK
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return runAdminCommand(group, c, help, args[1:], environ, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "toolgate %s: unknown command %q\n\n", group, args[0])
	help(stderr)
	return exitUsage
}

func runAdminCommand(group string, c adminCommand, help func(io.Writer), args, environ []string, stdout, stderr io.Writer) int {
	name := "toolgate " + group + " " + c.name
	fs, cf := newConfigFlagSet(group+" "+c.name, stderr)
	var a adminArgs
	if group == "grants" {
		fs.StringVar(&a.user, "user", "", "")
	}
	if c.name == "list" {
		fs.BoolVar(&a.json, "json", false, "")
	}
	positional, err := parseInterleaved(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		help(stdout)
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n\n", name, err)
		help(stderr)
		return exitUsage
	case len(positional) > c.maxArgs:
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n\n", name, positional[c.maxArgs])
		help(stderr)
		return exitUsage
	}
	if len(positional) == 1 {
		a.arg = positional[0]
	}
	if err := checkAdminArgs(group, c.name, a); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n\n", name, err)
		help(stderr)
		return exitUsage
	}
	client, ok := adminClient(name, cf, environ, stderr)
	if !ok {
		return exitError
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := c.run(ctx, client, a, stdout); err != nil {
		reportAdminError(stderr, name, client, err)
		return exitError
	}
	return exitOK
}

// adminClient loads the configuration the way "toolgate serve" does and
// returns a client for its admin endpoint with the token from its data
// directory. On failure it writes why to stderr and reports false.
func adminClient(name string, cf *configFlagValues, environ []string, stderr io.Writer) (*admin.Client, bool) {
	loaded, err := cf.load(environ)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, false
	}
	cfg := loaded.Config
	if cfg.Server.AdminListen == "" {
		fmt.Fprintf(stderr, "%s: the admin endpoint is disabled (server.admin_listen is empty); set it, restart toolgate serve and try again\n", name)
		return nil, false
	}
	token, err := readAdminToken(cfg.Store.Dir)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, false
	}
	return &admin.Client{BaseURL: "http://" + cfg.Server.AdminListen, Token: token}, true
}

// reportAdminError writes the failure of an operator command's call to
// c: a server that cannot be reached gets a hint that it is not running.
func reportAdminError(stderr io.Writer, name string, c *admin.Client, err error) {
	var ue *url.Error
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: is toolgate serve running? could not reach the admin endpoint at %s: %v\n", name, strings.TrimPrefix(c.BaseURL, "http://"), ue.Err)
		return
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
}

// checkAdminArgs checks the combination of arguments a command got.
func checkAdminArgs(group, cmd string, a adminArgs) error {
	switch group + " " + cmd {
	case "grants revoke":
		switch {
		case a.arg == "" && a.user == "":
			return errors.New("name a grant id, or -user EMAIL to revoke every grant of a user")
		case a.arg != "" && a.user != "":
			return errors.New("give a grant id or -user, not both")
		}
	case "clients delete":
		if a.arg == "" {
			return errors.New("name the client id (see toolgate clients list)")
		}
	}
	return nil
}

// parseInterleaved parses flags that may come before or after positional
// arguments ("revoke ID -config f" as well as "revoke -config f ID").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard) // errors are reported by the caller, once
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// readAdminToken reads the admin token the running server keeps in the
// data directory; it never creates one.
func readAdminToken(dataDir string) (string, error) {
	path := filepath.Join(dataDir, admin.TokenFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no admin token at %s: is toolgate serve running with this data directory (store.dir, -data-dir)?", path)
	}
	if err != nil {
		return "", fmt.Errorf("read the admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("the admin token file %s is empty; delete it and restart toolgate serve", path)
	}
	return tok, nil
}

func grantsList(ctx context.Context, c *admin.Client, a adminArgs, stdout io.Writer) error {
	gs, err := c.ListGrants(ctx, a.user)
	if err != nil {
		return err
	}
	if a.json {
		return writeJSON(stdout, gs)
	}
	if len(gs) == 0 {
		fmt.Fprintln(stdout, "no grants")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tCLIENT\tROLE\tPERMISSIONS\tCREATED\tEXPIRES")
	for _, g := range gs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, orDash(g.Email), g.ClientID, orDash(g.Role),
			orDash(strings.Join(g.Permissions, ",")), stamp(g.CreatedAt), stamp(g.ExpiresAt))
	}
	return tw.Flush()
}

func grantsRevoke(ctx context.Context, c *admin.Client, a adminArgs, stdout io.Writer) error {
	if a.user != "" {
		n, err := c.RevokeUserGrants(ctx, a.user)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %d grant(s) of %s\n", n, a.user)
		return nil
	}
	if err := c.RevokeGrant(ctx, a.arg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked grant %s\n", a.arg)
	return nil
}

func clientsList(ctx context.Context, c *admin.Client, a adminArgs, stdout io.Writer) error {
	cs, err := c.ListClients(ctx)
	if err != nil {
		return err
	}
	if a.json {
		return writeJSON(stdout, cs)
	}
	if len(cs) == 0 {
		fmt.Fprintln(stdout, "no clients")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tAUTH\tREDIRECT URIS\tLAST USED\tEXPIRES")
	for _, cl := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cl.ID, orDash(cl.Name), cl.TokenEndpointAuthMethod,
			strings.Join(cl.RedirectURIs, ","), stamp(cl.LastUsedAt), stamp(cl.ExpiresAt))
	}
	return tw.Flush()
}

func clientsDelete(ctx context.Context, c *admin.Client, a adminArgs, stdout io.Writer) error {
	if err := c.DeleteClient(ctx, a.arg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted client %s\n", a.arg)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stamp formats a time for a table: UTC, to the minute.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func grantsHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: toolgate grants <command> [arguments] [flags]

List and revoke grants of a running toolgate. A grant is one user's
sign-in to one MCP client; revoking it ends its access and refresh tokens
at once (and its AuthKit session), so the client's next request gets 401
and the user must sign in again. A sign-in whose authorization code the
client has not exchanged yet is listed too, expiring with the code
(auth.code_ttl); the exchange extends it to auth.refresh_token_ttl.

Commands:
`)
	for _, c := range grantCommands {
		fmt.Fprintf(w, "  %-7s %-22s %s\n", c.name, c.usage, c.summary)
	}
	printAdminFlags(w)
	fmt.Fprint(w, `
Examples:
  toolgate grants list
  toolgate grants list -user alice@example.com -json
  toolgate grants revoke 3f2a...           (an ID from grants list)
  toolgate grants revoke -user bob@example.com
`)
}

func clientsHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: toolgate clients <command> [arguments] [flags]

List and delete the OAuth clients registered with a running toolgate
(dynamic registration and client metadata documents). Deleting a client
also revokes its grants and tokens; the client may register again.

Commands:
`)
	for _, c := range clientCommands {
		fmt.Fprintf(w, "  %-7s %-8s %s\n", c.name, c.usage, c.summary)
	}
	printAdminFlags(w)
	fmt.Fprint(w, `
Examples:
  toolgate clients list
  toolgate clients list -json
  toolgate clients delete 9c1e...          (an ID from clients list)
`)
}

func printAdminFlags(w io.Writer) {
	printAdminConnection(w)
	fmt.Fprint(w, `
Flags:
  -user EMAIL
    	grants only: the user (list: only theirs; revoke: all of theirs)
  -json
    	list only: print JSON instead of a table
`)
	printAdminConfigFlags(w)
}

// printAdminConnection explains, in an operator command's help, how the
// command finds the running server.
func printAdminConnection(w io.Writer) {
	fmt.Fprint(w, `
These commands talk to the admin endpoint of the running "toolgate serve"
(server.admin_listen, loopback only) with the token it keeps in its data
directory (<store.dir>/admin.token). Give them the same configuration as
the server (-config, environment, -data-dir, -admin-listen) so they find
both. "toolgate serve" must be running.
`)
}

// printAdminConfigFlags ends the flag list of an operator command's help.
func printAdminConfigFlags(w io.Writer) {
	fmt.Fprint(w, `  -config FILE, -data-dir DIR, -admin-listen ADDR, ...
    	the configuration flags of "toolgate serve" (see toolgate serve -h)
  -h
    	show this help
`)
}
