package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/auth/admin"
	"github.com/toolgate/toolgate/core/auth/devauthkit"
	"github.com/toolgate/toolgate/core/replica"
	"github.com/toolgate/toolgate/core/store/pgstore/pgtest"
)

// balancer is the test's load balancer in front of the replicas, as
// nginx is in the README's example: clients only know its URL (every
// replica's server.public_url), and it forwards each request with the
// public Host header. A request naming a session (Mcp-Session-Id, or
// /sse's sessionid) that starts with a replica's server.replica_id and a
// dot goes to that replica; any other to the replica the test routes to,
// or round-robin.
type balancer struct {
	url string

	mu       sync.Mutex
	replicas map[string]*url.URL
	route    string // a replica name, or "" for round-robin
	order    []string
	next     int
}

func newBalancer(t *testing.T) *balancer {
	t.Helper()
	b := &balancer{replicas: map[string]*url.URL{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(b.pick(pr.In))
			pr.Out.Host = pr.In.Host // proxy_set_header Host $host
		},
		FlushInterval: -1,                         // stream SSE at once
		ErrorLog:      log.New(io.Discard, "", 0), // a killed replica's connection errors are expected
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

func (b *balancer) add(name, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.replicas[name] = &url.URL{Scheme: "http", Host: addr}
	b.order = append(b.order, name)
}

// routeTo sends every request to the named replica; "" goes round-robin.
func (b *balancer) routeTo(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.route = name
}

func (b *balancer) pick(r *http.Request) *url.URL {
	b.mu.Lock()
	defer b.mu.Unlock()
	session := r.Header.Get("Mcp-Session-Id") + r.URL.Query().Get("sessionid")
	if name, _, ok := strings.Cut(session, "."); ok && b.replicas[name] != nil {
		return b.replicas[name]
	}
	if b.route != "" {
		return b.replicas[b.route]
	}
	name := b.order[b.next%len(b.order)]
	b.next++
	return b.replicas[name]
}

// replicaEnv is what every replica of the deployment shares: the
// database, the WorkOS credentials, the cookie key, the public URL, the
// plugins and plugins.toml.
type replicaEnv struct {
	env []string
}

// startReplica runs "toolgate serve" as replica id on a port of its own,
// with a data directory of its own (admin token, compilation cache).
func startReplica(t *testing.T, re replicaEnv, id string) (p *process, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	dataDir = filepath.Join(dir, "data")
	cmd := exec.Command(toolgateBinary(t), "serve", "-listen", freeLoopbackAddr(t), "-admin-listen", "127.0.0.1:0",
		"-data-dir", dataDir, "-log-format", "json")
	cmd.Dir = dir
	cmd.Env = append(append(cleanEnv(), re.env...), "TOOLGATE_SERVER_REPLICA_ID="+id)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p = &process{cmd: cmd, stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	lines := bufio.NewScanner(pipe)
	var early strings.Builder
	for lines.Scan() {
		var rec struct {
			Msg    string `json:"msg"`
			Addr   string `json:"addr"`
			Admin  string `json:"admin"`
			Public string `json:"public_url"`
		}
		if json.Unmarshal(lines.Bytes(), &rec) == nil && rec.Msg == "toolgate listening" {
			p.addr, p.admin, p.public = rec.Addr, rec.Admin, rec.Public
			break
		}
		early.Write(lines.Bytes())
		early.WriteByte('\n')
	}
	if p.addr == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("toolgate serve exited before its start line:\n%s", early.String())
	}
	go func() {
		_, _ = io.Copy(p.stderr, pipe)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p, dataDir
}

// freeLoopbackAddr returns a loopback address nothing listens on. A
// replica needs a fixed port: with port 0 a loopback public_url would be
// rewritten to the replica's own port, and every replica must keep the
// balancer's URL.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// devWorkOS runs the development AuthKit as the deployment's WorkOS: one
// service outside the replicas, which all of them call (in a deployment,
// api.workos.com).
func devWorkOS(t *testing.T, public string) *devauthkit.Server {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	users := append(devauthkit.DefaultUsers(),
		devauthkit.User{Email: "carol@example.com", Role: "member", Organization: "Acme"},
		devauthkit.User{Email: "dave@example.com", Role: "member", Organization: "Acme"})
	dev, err := devauthkit.New(devauthkit.Config{
		ListenAddr:   ln.Addr().String(),
		BaseURL:      "http://" + ln.Addr().String(),
		RedirectURIs: []string{public + "/callback"},
		APIKey:       "sk_test_" + hex.EncodeToString(key.PublicKey.N.Bytes()[:16]),
		Users:        users,
		Key:          key,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: dev, ReadHeaderTimeout: 10 * time.Second}}
	srv.Start()
	t.Cleanup(srv.Close)
	return dev
}

// signInThrough is signIn with a hook run just before the browser comes
// back to /callback from AuthKit (to kill a replica mid-flow), and with
// the registered client's ID returned.
func signInThrough(t *testing.T, public, user string, beforeCallback func()) (access, refreshTok, clientID string) {
	t.Helper()
	return signInFlow(t, public, "/mcp", user, beforeCallback)
}

// refusedAtOnce checks that status() answers 401 on the very first try:
// a change made through one replica returns only once every other live
// replica has dropped what it changed from its token cache (pgstore waits
// for their confirmations), so no request may be served stale after it.
func refusedAtOnce(t *testing.T, what string, status func() int) {
	t.Helper()
	if code := status(); code != http.StatusUnauthorized {
		t.Fatalf("%s: the very next request got %d, want 401", what, code)
	}
}

// TestReplicasOnPostgres runs two "toolgate serve" processes as replicas
// of one deployment behind a load balancer: one PostgreSQL database, one
// WorkOS (the development AuthKit, outside both), the same cookie key,
// public URL, plugins and plugins.toml. A user signs in through one and
// is served by the other; refresh-token reuse detected on one ends the
// grant on both; an operator's revocation through one is refused by the
// other; a replica killed with SIGKILL in the middle of a sign-in loses
// nothing the other cannot finish and serve.
func TestReplicasOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm plugins and starts two servers and PostgreSQL")
	}
	dbURL := pgtest.URL(t)
	dist, err := referencePlugins()
	if err != nil {
		t.Fatal(err)
	}
	toolgateBinary(t) // built from this package's directory, before leaving it
	t.Chdir(t.TempDir())
	lb := newBalancer(t)
	public := lb.url
	dev := devWorkOS(t, public)
	cookieKey := make([]byte, 32)
	_, _ = rand.Read(cookieKey)
	re := replicaEnv{env: []string{
		"WORKOS_CLIENT_ID=" + dev.ClientID(),
		"WORKOS_CLIENT_SECRET=" + dev.APIKey(),
		"COOKIE_ENCRYPTION_KEY=" + hex.EncodeToString(cookieKey),
		"TOOLGATE_AUTH_WORKOS_API_URL=" + dev.BaseURL(),
		"TOOLGATE_SERVER_PUBLIC_URL=" + public,
		"TOOLGATE_STORE_BACKEND=postgres",
		"TOOLGATE_STORE_POSTGRES_URL=" + dbURL,
		"TOOLGATE_PLUGINS_DIR=" + dist,
		"TOOLGATE_PLUGINS_CONFIG=" + filepath.Join(repoRoot, "plugins.toml"),
		"TOOLGATE_PLUGINS_CACHE_DIR=" + filepath.Join(os.TempDir(), "toolgate-test-wasm-cache"),
		"TOOLGATE_PLUGINS_WATCH=false",
	}}
	a, aData := startReplica(t, re, "a")
	b, bData := startReplica(t, re, "b")
	lb.add("a", a.addr)
	lb.add("b", b.addr)
	if a.public != public || b.public != public {
		t.Fatalf("public URLs %q and %q, want the balancer's %q on both", a.public, b.public, public)
	}
	cli := func(p *process, dataDir string, args ...string) (int, string) {
		t.Helper()
		var out, errOut strings.Builder
		code := run(append(args, "-data-dir", dataDir, "-admin-listen", p.admin), nil, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	direct := func(p *process, token string) int { // /mcp ping on one replica, past the balancer
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+p.addr+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Host = strings.TrimPrefix(public, "http://")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	connect := func(token, version string) *mcp.ClientSession {
		t.Helper()
		client := mcp.NewClient(&mcp.Implementation{Name: "replica-e2e", Version: "1.0.0"}, nil)
		cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: public + "/mcp", HTTPClient: bearerClient(token), MaxRetries: -1},
			&mcp.ClientSessionOptions{ProtocolVersion: version})
		if err != nil {
			t.Fatalf("connect %s: %v", version, err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}

	// Both replicas are in the registry with the same plugin set.
	var rs []replica.Info
	waitReplicas(t, "both replicas' heartbeats", func() bool {
		code, out := cli(a, aData, "replicas", "-json")
		rs = nil
		return code == exitOK && json.Unmarshal([]byte(out), &rs) == nil && len(rs) == 2
	})
	digestA, idA := readyzDigest(t, "http://"+a.addr)
	digestB, idB := readyzDigest(t, "http://"+b.addr)
	if digestA != digestB || rs[0].PluginDigest != digestA || rs[1].PluginDigest != digestA || rs[0].ID != "a" || rs[1].ID != "b" || idA != "a" || idB != "b" {
		t.Fatalf("readyz digests %s (%s) and %s (%s); registry %+v", digestA, idA, digestB, idB, rs)
	}
	if code, out := cli(b, bData, "replicas"); code != exitOK || !strings.Contains(out, "all 2 replicas serve the same plugin set ("+digestA+")") {
		t.Errorf("toolgate replicas through B = %d\n%s", code, out)
	}

	// Sign in through A; call tools through B, statelessly and in a
	// session.
	lb.routeTo("a")
	alice, aliceRefresh, aliceClient := signInThrough(t, public, "alice@example.com", nil)
	lb.routeTo("b")
	stateless := connect(alice, "2026-07-28")
	if res := callTool(t, stateless, "add", map[string]any{"a": 2, "b": 3}); res.IsError || contentText(res) != "5" {
		t.Errorf("add through B = %q (IsError %v)", contentText(res), res.IsError)
	}
	session := connect(alice, "2025-11-25")
	if got := listTools(t, session); !slices.Equal(got, []string{"add", "generateImage", "whoami"}) {
		t.Errorf("alice lists %v through B", got)
	}
	if res := callTool(t, session, "whoami", nil); !strings.Contains(contentText(res), "alice@example.com") {
		t.Errorf("whoami through B = %q", contentText(res))
	}
	// The session lives on B: A does not know it (404), so the balancer
	// must keep it on B; the stateless client may go anywhere.
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}, "Mcp-Session-Id": {session.ID()}, "Mcp-Protocol-Version": {"2025-11-25"}}
	req, _ := http.NewRequest("POST", "http://"+a.addr+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`))
	req.Header, req.Host = h, strings.TrimPrefix(public, "http://")
	req.Header.Set("Authorization", "Bearer "+alice)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("B's session on A: %v %v, want 404", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}

	// Round-robin, a stateful session still works: its ID starts with its
	// replica's name, and the balancer keeps it there.
	lb.routeTo("")
	balanced := connect(alice, "2025-11-25")
	for i := range 4 {
		if res := callTool(t, balanced, "add", map[string]any{"a": i, "b": 1}); res.IsError || contentText(res) != fmt.Sprint(i+1) {
			t.Fatalf("add %d on a session behind the round-robin balancer = %q (IsError %v)", i, contentText(res), res.IsError)
		}
	}
	if id := balanced.ID(); !strings.HasPrefix(id, "a.") && !strings.HasPrefix(id, "b.") {
		t.Errorf("session ID %q does not name its replica", id)
	}

	// Refresh on B; the old refresh token replayed on A revokes the grant,
	// and neither replica accepts its tokens any more. B has the new
	// access token cached before the replay.
	status, alice2 := refresh(t, public, aliceClient, aliceRefresh)
	if status != http.StatusOK || alice2 == "" {
		t.Fatalf("refresh through B = %d", status)
	}
	if direct(b, alice2) != http.StatusOK || direct(a, alice2) != http.StatusOK {
		t.Fatal("the refreshed token is not accepted by both replicas")
	}
	lb.routeTo("a")
	if status, _ := refresh(t, public, aliceClient, aliceRefresh); status != http.StatusBadRequest {
		t.Errorf("replaying the rotated refresh token through A = %d, want 400", status)
	}
	if code := direct(a, alice2); code != http.StatusUnauthorized {
		t.Errorf("A after the replay it detected: %d, want 401", code)
	}
	refusedAtOnce(t, "B after refresh-token reuse detected on A", func() int { return direct(b, alice2) })

	// An operator revokes bob's grant through A's admin endpoint; B, which
	// has his token cached, refuses it.
	lb.routeTo("")
	bob, _, _ := signInThrough(t, public, "bob@example.com", nil) // round-robin: every step on another replica
	if direct(b, bob) != http.StatusOK {
		t.Fatal("bob's token is not accepted by B")
	}
	code, out := cli(a, aData, "grants", "revoke", "-user", "bob@example.com")
	if code != exitOK || !strings.Contains(out, "revoked 1 grant(s) of bob@example.com") {
		t.Fatalf("grants revoke through A = %d %s", code, out)
	}
	refusedAtOnce(t, "B after toolgate grants revoke through A", func() int { return direct(b, bob) })
	if code := direct(a, bob); code != http.StatusUnauthorized {
		t.Errorf("A after its own revocation: %d, want 401", code)
	}

	// carol signs in through A. dave starts signing in through A, which is
	// killed with SIGKILL while he is at AuthKit; the balancer sends his
	// return to B, which finishes the sign-in from the database.
	lb.routeTo("a")
	carol, carolRefresh, carolClient := signInThrough(t, public, "carol@example.com", nil)
	dave, _, _ := signInThrough(t, public, "dave@example.com", func() {
		if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-a.exited
		lb.routeTo("b")
	})
	select {
	case <-a.exited:
	default:
		t.Fatal("A was not killed during dave's sign-in")
	}
	lb.routeTo("b")
	if code := direct(b, dave); code != http.StatusOK {
		t.Errorf("dave's token (sign-in finished on B) on B: %d", code)
	}
	if code := direct(b, carol); code != http.StatusOK {
		t.Errorf("carol's token (issued by the dead A) on B: %d", code)
	}
	status, carol2 := refresh(t, public, carolClient, carolRefresh)
	if status != http.StatusOK || direct(b, carol2) != http.StatusOK {
		t.Errorf("refreshing on B the refresh token the dead A issued = %d", status)
	}
	daveSession := connect(dave, "2026-07-28")
	if res := callTool(t, daveSession, "whoami", nil); !strings.Contains(contentText(res), "dave@example.com") {
		t.Errorf("whoami as dave through B = %q", contentText(res))
	}
	code, out = cli(b, bData, "grants", "list", "-json")
	var grants []admin.Grant
	if code != exitOK || json.Unmarshal([]byte(out), &grants) != nil {
		t.Fatalf("grants list through B = %d %s", code, out)
	}
	var emails []string
	for _, g := range grants {
		emails = append(emails, g.Email)
	}
	slices.Sort(emails)
	if !slices.Equal(emails, []string{"carol@example.com", "dave@example.com"}) {
		t.Errorf("grants through B: %v, want carol's and dave's (alice's and bob's were revoked)", emails)
	}
	// A's record stays until its heartbeat expires; B keeps beating.
	code, out = cli(b, bData, "replicas", "-json")
	rs = nil
	if code != exitOK || json.Unmarshal([]byte(out), &rs) != nil || !slices.ContainsFunc(rs, func(r replica.Info) bool { return r.ID == idB }) {
		t.Errorf("replicas through B after A died = %d %s", code, out)
	}
}
