package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/auth/devauthkit"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/badgerstore"
)

// Shape of TestServeCrashDurability.
const (
	crashRounds  = 4
	crashWorkers = 6
	// crashUsers is the dev user pool: every chain signs in as a user of
	// its own, so the upstream's per-user counts belong to one grant.
	crashUsers = 320
	// crashKillMin and crashKillSpan bound the kill point of a round: the
	// child is killed once this many token responses (sign-ins and
	// refreshes) answered 200 in the round.
	crashKillMin  = 4
	crashKillSpan = 46
	// crashReadyBound is the generous bound on a restart's time to ready;
	// the measured times are logged.
	crashReadyBound = 15 * time.Second
	// crashCodeTTL and crashRefreshTTL are the child's auth.code_ttl and
	// auth.refresh_token_ttl: a grant lives crashCodeTTL until its code is
	// exchanged, and crashRefreshTTL from the exchange or a refresh on.
	crashCodeTTL    = 60 * time.Second
	crashRefreshTTL = 720 * time.Hour
	// crashSeedEnv overrides the random seed, to replay a logged run.
	crashSeedEnv = "TOOLGATE_TEST_CRASH_SEED"
)

// crashRedirect is the chains' OAuth redirect URI; nothing listens there,
// the browser stops at the redirect and reads the code from it.
const crashRedirect = "http://127.0.0.1:5555/callback"

// TestServeCrashDurability is the crash-durability proof of issue 7 for
// the whole server process. It starts "toolgate serve" as a child process,
// runs concurrent sign-ins and refresh chains against it, SIGKILLs it after
// a random number of token responses, restarts it on the same data
// directory and port, and checks, round after round:
//
//   - the restart is ready (/readyz 200) within crashReadyBound (the real
//     times are logged);
//   - every access token any client ever received in a 200 answers
//     tools/list on /mcp, unless its grant ended legitimately (below); a
//     rotation does not end the access tokens issued before it (they live
//     to their expiry), so no other exception exists;
//   - with the server stopped, the store opened directly holds every grant
//     whole (its client, identity, resource, sealed upstream session) and
//     every returned token under its chain's grant; a refresh token
//     rotated by a refresh that answered is marked used, the latest one
//     is not, and a refresh whose answer the kill swallowed either rotated
//     completely (old refresh token marked used and the grant updated, in
//     one commit) or not at all;
//   - every chain's grant was extended to the refresh lifetime by its code
//     exchange; a grant no client knows of (a sign-in the kill cut short)
//     is either such a full grant, whose exchange committed but whose
//     answer was lost, or a pending one, created at /callback and expiring
//     with its never-exchanged code, and pending ones are live only from
//     kills less than the code lifetime ago;
//   - every chain's latest refresh token refreshes once more, and the new
//     access token works.
//
// Legitimate ends, each identified exactly rather than tolerated: a
// refresh in flight at the kill that the store shows committed has
// rotated the client's refresh token (the answer was lost, the rotation
// was not), so presenting it again is refresh-token reuse: 400, and the
// grant ends. A refresh in flight that had already spent the single-use
// upstream refresh token but was killed before committing leaves the
// grant holding a spent upstream token: the next refresh gets
// invalid_grant from upstream and the grant ends ("sign in again"). The
// test tells that case from a lost token by counting the upstream's
// refreshes per user.
//
// The upstream is a development AuthKit served by the test process, with
// toolgate in production mode against it (WORKOS_CLIENT_ID,
// auth.workos_api_url), as against WorkOS, whose sessions outlive a
// toolgate restart. The embedded development AuthKit keeps its sessions
// in memory and loses them on a restart by design, which would end every
// grant at its first refresh after the crash. The cookie key and the
// upstream credentials are the same across restarts: the sealed upstream
// refresh tokens in the store must stay readable.
func TestServeCrashDurability(t *testing.T) {
	toolgateBinary(t) // skips with -short
	dist, err := referencePlugins()
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, s, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	port := crashFreePort(t)
	public := "http://127.0.0.1:" + port
	up := startCrashUpstream(t, public+"/callback")

	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	toml := fmt.Sprintf(`[server]
listen = %q
public_url = %q

[store]
dir = %q

[auth]
workos_client_id = %q
workos_api_key = %q
workos_api_url = %q
cookie_encryption_key = %q
rate_limit = 0
code_ttl = %q
refresh_token_ttl = %q

[plugins]
dir = %q
config = %q
cache_dir = %q
watch = false
`, "127.0.0.1:"+port, public, dataDir, up.dev.ClientID(), up.dev.APIKey(), up.dev.BaseURL(),
		store.NewSecret(), crashCodeTTL, crashRefreshTTL, dist, filepath.Join(repoRoot, "plugins.toml"), filepath.Join(os.TempDir(), "toolgate-test-wasm-cache"))
	if err := os.WriteFile(filepath.Join(dir, "toolgate.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &crashHarness{t: t, dir: dir, dataDir: dataDir, port: port, public: public, up: up,
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 30 * time.Second}}
	t.Cleanup(h.client.CloseIdleConnections)
	h.start("first start")

	for round := 1; round <= crashRounds; round++ {
		killAt := crashKillMin + rng.IntN(crashKillSpan)
		r := h.load(round, killAt, rng.Uint64())
		ready := h.start(fmt.Sprintf("round %d: restart after SIGKILL", round))
		if ready > crashReadyBound {
			t.Errorf("round %d: ready %v after the restart, want within %v", round, ready, crashReadyBound)
		}
		r.accessChecked = h.checkAccess(round)
		h.stop()
		h.inspectStore(round, r)
		h.start(fmt.Sprintf("round %d: restart after the store check", round))
		r.refreshChecked = h.checkRefresh(round, r)
		t.Logf("round %d: SIGKILL at %d token answers (%d sign-ins, %d refreshes answered); refreshes in flight: %d (%d untouched, %d rotated with the answer lost, %d upstream token spent); ready %v after the restart; checked %d access tokens on /mcp, %d latest refresh tokens; %d grants stored, %d from sign-ins cut short (%d of them pending, their code never exchanged)",
			round, killAt, r.signIns, r.refreshes, r.inflight, r.untouched, r.rotated, r.spent, ready.Round(time.Millisecond), r.accessChecked, r.refreshChecked, r.grants, r.orphans, r.pending)
		if t.Failed() {
			return
		}
	}
}

// crashFreePort returns a loopback port that was free a moment ago: the child
// must come back on the same port, since its public URL (the OAuth issuer
// and the tokens' resource) names it.
func crashFreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// crashUpstream is the development AuthKit the child signs in against,
// served by the test process so that its sessions survive the child. It
// counts the refreshes it answered per user, and the connections it has
// open, so the test knows when a killed child's last requests are done.
type crashUpstream struct {
	dev *devauthkit.Server

	mu        sync.Mutex
	open      int            // connections not yet closed
	refreshed map[string]int // user email -> refresh_token grants answered 200
}

func startCrashUpstream(t *testing.T, callback string) *crashUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	users := make([]devauthkit.User, crashUsers)
	for i := range users {
		users[i] = devauthkit.User{Email: fmt.Sprintf("user%03d@example.com", i), Role: "member", Permissions: []string{}, Organization: "Acme"}
	}
	dev, err := devauthkit.New(devauthkit.Config{
		ListenAddr:   ln.Addr().String(),
		BaseURL:      "http://" + ln.Addr().String(),
		RedirectURIs: []string{callback},
		Users:        users,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	up := &crashUpstream{dev: dev, refreshed: make(map[string]int)}
	srv := &http.Server{Handler: up, ReadHeaderTimeout: 10 * time.Second, ConnState: up.connState}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return up
}

func (u *crashUpstream) connState(_ net.Conn, s http.ConnState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch s {
	case http.StateNew:
		u.open++
	case http.StateClosed, http.StateHijacked:
		u.open--
	}
}

// ServeHTTP serves the development AuthKit and counts answered refreshes.
func (u *crashUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/user_management/authenticate" {
		u.dev.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		GrantType string `json:"grant_type"`
	}
	if json.Unmarshal(body, &req) != nil {
		v, _ := url.ParseQuery(string(body))
		req.GrantType = v.Get("grant_type")
	}
	rec := &crashRecorder{ResponseWriter: w, status: http.StatusOK}
	u.dev.ServeHTTP(rec, r)
	if req.GrantType != "refresh_token" || rec.status != http.StatusOK {
		return
	}
	var resp struct {
		User struct {
			Email string `json:"email"`
		} `json:"user"`
	}
	if json.Unmarshal(rec.body.Bytes(), &resp) == nil && resp.User.Email != "" {
		u.mu.Lock()
		u.refreshed[resp.User.Email]++
		u.mu.Unlock()
	}
}

// quiesce waits until the upstream has no connection open, so every
// request a killed child had sent it has been answered (or refused) and
// the refresh counts are final. The chains' browsers do not keep
// connections alive, and the child is dead.
func (u *crashUpstream) quiesce(t *testing.T) map[string]int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		u.mu.Lock()
		open := u.open
		counts := make(map[string]int, len(u.refreshed))
		for k, v := range u.refreshed {
			counts[k] = v
		}
		u.mu.Unlock()
		if open == 0 {
			return counts
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upstream still has %d connections open 30s after the child died", open)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// crashRecorder passes a response through and keeps its status and body.
type crashRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *crashRecorder) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *crashRecorder) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// crashChain is one client's sign-in and its refreshes: every token the
// server returned to it in a 200, in order.
type crashChain struct {
	round     int
	email     string
	clientID  string
	access    []string // every access token returned
	refresh   []string // every refresh token returned; the last is the latest
	refreshed int      // refreshes answered 200

	// inflight: a refresh of the latest refresh token was sent at sentAt
	// and its answer never arrived (the kill).
	inflight bool
	sentAt   time.Time
	// outcome classifies an in-flight refresh after the store check.
	outcome inflightOutcome
	// ended says why the chain's grant ended legitimately; "" while alive.
	ended string
}

type inflightOutcome int

const (
	outcomeNone      inflightOutcome = iota
	outcomeUntouched                 // nothing committed, upstream untouched: the old token must work
	outcomeRotated                   // rotation committed, answer lost: the old token is spent
	outcomeSpent                     // upstream token spent, rotation not committed: the grant must end cleanly
)

func (o inflightOutcome) String() string {
	switch o {
	case outcomeUntouched:
		return "untouched"
	case outcomeRotated:
		return "rotated, answer lost"
	case outcomeSpent:
		return "upstream refresh token spent"
	}
	return "none"
}

// crashRound is what one round did, for the checks and the log.
type crashRound struct {
	signIns, refreshes                  int
	inflight, untouched, rotated, spent int
	accessChecked, refreshChecked       int
	grants, orphans, pending            int
}

// crashHarness runs the child and keeps every chain across rounds.
type crashHarness struct {
	t       *testing.T
	dir     string
	dataDir string
	port    string
	public  string
	up      *crashUpstream
	proc    *process
	// client carries every API call to the child; its idle connections
	// are dropped whenever the child goes away.
	client *http.Client

	mu       sync.Mutex
	chains   []*crashChain
	nextUser int
	// orphanBound is how many sign-ins kills have cut short so far: each
	// may have left a grant no client knows of.
	orphanBound int
	// kills are the instants of the kills so far, each just after the
	// sign-ins it cut short began.
	kills []time.Time
}

// start starts the child, waits until /readyz answers 200 and returns how
// long that took from the exec.
func (h *crashHarness) start(what string) time.Duration {
	t := h.t
	t.Helper()
	begin := time.Now()
	h.proc = startServe(t, h.dir, "-listen", "127.0.0.1:"+h.port)
	deadline := begin.Add(2 * crashReadyBound)
	for {
		resp, err := h.client.Get(h.public + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /readyz not 200 within %v (last: %v)", what, 2*crashReadyBound, err)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	ready := time.Since(begin)
	t.Logf("%s: ready in %v", what, ready.Round(time.Millisecond))
	return ready
}

// kill SIGKILLs the child and waits for it to be gone.
func (h *crashHarness) kill() {
	if err := h.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		h.t.Fatalf("SIGKILL: %v", err)
	}
	<-h.proc.exited
	h.client.CloseIdleConnections()
}

// stop ends the child with SIGTERM and requires a clean exit.
func (h *crashHarness) stop() {
	t := h.t
	if err := h.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-h.proc.exited:
		if h.proc.err != nil {
			t.Fatalf("toolgate serve after SIGTERM: %v, want exit status 0\n%s", h.proc.err, h.proc.stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("toolgate serve did not exit within 60s of SIGTERM")
	}
	h.client.CloseIdleConnections()
}

// load runs crashWorkers workers, each signing in chains and refreshing
// them, until killAt token responses answered 200; then it kills the
// child and waits for the workers and for the upstream to settle.
func (h *crashHarness) load(round, killAt int, seed uint64) *crashRound {
	t := h.t
	r := &crashRound{}
	var (
		answered atomic.Int64
		killed   atomic.Bool
		killNow  = make(chan struct{})
		once     sync.Once
		wg       sync.WaitGroup
		signIns  atomic.Int64
		refs     atomic.Int64
	)
	onAnswer := func() {
		if answered.Add(1) >= int64(killAt) {
			once.Do(func() { close(killNow) })
		}
	}
	for w := range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for !killed.Load() {
				email, ok := h.takeUser()
				if !ok {
					return // pool exhausted: the others reach the kill point
				}
				c, err := crashSignIn(h.client, h.public, email)
				if err != nil {
					if killed.Load() {
						return // a sign-in the kill cut short returned nothing
					}
					t.Errorf("round %d: sign-in of %s: %v", round, email, err)
					return
				}
				c.round = round
				h.mu.Lock()
				h.chains = append(h.chains, c)
				h.mu.Unlock()
				signIns.Add(1)
				onAnswer()
				for range 1 + rng.IntN(6) {
					if killed.Load() {
						return
					}
					h.mu.Lock()
					c.inflight, c.sentAt = true, time.Now()
					rt := c.refresh[len(c.refresh)-1]
					h.mu.Unlock()
					status, tok, err := crashRefresh(h.client, h.public, c.clientID, rt)
					if err != nil {
						if killed.Load() {
							return // the answer was lost: c.inflight stays set
						}
						t.Errorf("round %d: refresh of %s: %v", round, email, err)
						return
					}
					if status != http.StatusOK {
						t.Errorf("round %d: refresh of %s answered %d, want 200", round, email, status)
						return
					}
					h.mu.Lock()
					c.inflight = false
					c.access = append(c.access, tok.AccessToken)
					c.refresh = append(c.refresh, tok.RefreshToken)
					c.refreshed++
					h.mu.Unlock()
					refs.Add(1)
					onAnswer()
				}
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-killNow:
	case <-allDone:
		t.Fatalf("round %d: the workers stopped before %d token responses", round, killAt)
	case <-time.After(120 * time.Second):
		t.Fatalf("round %d: no %d token responses within 120s", round, killAt)
	}
	killed.Store(true)
	h.kill()
	<-allDone
	r.signIns, r.refreshes = int(signIns.Load()), int(refs.Load())
	h.orphanBound += crashWorkers
	h.kills = append(h.kills, time.Now())
	return r
}

// takeUser returns the next unused dev user.
func (h *crashHarness) takeUser() (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nextUser == crashUsers {
		return "", false
	}
	h.nextUser++
	return fmt.Sprintf("user%03d@example.com", h.nextUser-1), true
}

// alive returns the chains whose grants have not ended.
func (h *crashHarness) alive() []*crashChain {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*crashChain
	for _, c := range h.chains {
		if c.ended == "" {
			out = append(out, c)
		}
	}
	return out
}

// checkAccess calls tools/list with every access token of every live
// chain, right after the restart and before anything could end a grant,
// and returns how many tokens it checked.
func (h *crashHarness) checkAccess(round int) int {
	t := h.t
	var tokens []string
	for _, c := range h.alive() {
		tokens = append(tokens, c.access...)
	}
	crashParallel(tokens, func(tok string) {
		if status, body, err := crashListTools(h.client, h.public, tok); err != nil || status != http.StatusOK || !strings.Contains(body, `"name":"add"`) {
			t.Errorf("round %d: tools/list with a returned access token after the restart = %d %.200s (%v), want 200 listing add", round, status, body, err)
		}
	})
	return len(tokens)
}

// inspectStore opens the stopped server's store and checks every grant
// and every returned token, and classifies the refreshes the kill caught
// in flight.
func (h *crashHarness) inspectStore(round int, r *crashRound) {
	t := h.t
	upstream := h.up.quiesce(t)
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, badgerstore.Options{Dir: h.dataDir, GCInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("round %d: open the store: %v", round, err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Errorf("round %d: close the store: %v", round, err)
		}
	}()
	now := time.Now()
	resource := h.public + "/mcp"
	grants, err := st.ListGrants(ctx, store.GrantFilter{})
	if err != nil {
		t.Fatalf("round %d: list grants: %v", round, err)
	}
	r.grants = len(grants)
	byClient := make(map[string][]store.Grant)
	for _, g := range grants {
		byClient[g.ClientID] = append(byClient[g.ClientID], g)
		// Whole: its client, the identity AuthKit vouched for, the
		// resource, the sealed upstream session, sane times.
		if _, err := st.GetClient(ctx, g.ClientID); err != nil {
			t.Errorf("round %d: grant %s: its client %s: %v", round, g.ID, g.ClientID, err)
		}
		if g.UserID == "" || !strings.HasSuffix(g.Email, "@example.com") || g.OrganizationID == "" || g.Role != "member" ||
			g.Resource != resource || g.UpstreamSessionID == "" || len(g.UpstreamRefreshToken) == 0 ||
			g.CreatedAt.IsZero() || g.UpdatedAt.Before(g.CreatedAt) || !g.ExpiresAt.After(now) {
			t.Errorf("round %d: grant %s is not whole: %+v", round, g.ID, redactGrant(g))
		}
	}
	known := make(map[string]bool)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.chains {
		gs := byClient[c.clientID]
		if c.ended != "" {
			if len(gs) != 0 {
				t.Errorf("round %d: %s: the grant that ended (%s) is back: %d grants", round, c.email, c.ended, len(gs))
			}
			continue
		}
		if len(gs) != 1 {
			t.Errorf("round %d: %s: %d grants for its client, want 1", round, c.email, len(gs))
			continue
		}
		g := gs[0]
		known[g.ID] = true
		if g.Email != c.email {
			t.Errorf("round %d: %s: its grant is %s's", round, c.email, g.Email)
		}
		if g.ExpiresAt.Before(g.CreatedAt.Add(crashRefreshTTL)) {
			t.Errorf("round %d: %s: its grant expires at %v, want the code exchange to have extended it to at least %v after its creation at %v", round, c.email, g.ExpiresAt, crashRefreshTTL, g.CreatedAt)
		}
		for _, a := range c.access {
			tok, err := st.GetToken(ctx, store.HashSecret(a))
			if err != nil || tok.Kind != store.AccessToken || tok.GrantID != g.ID || tok.ClientID != c.clientID || tok.Resource != resource {
				t.Errorf("round %d: %s: a returned access token in the store: %+v (%v), want an access token of grant %s", round, c.email, tok, err, g.ID)
			}
		}
		for i, rt := range c.refresh {
			tok, err := st.GetToken(ctx, store.HashSecret(rt))
			if err != nil || tok.Kind != store.RefreshToken || tok.GrantID != g.ID || tok.ClientID != c.clientID {
				t.Errorf("round %d: %s: returned refresh token %d in the store: %+v (%v), want a refresh token of grant %s", round, c.email, i, tok, err, g.ID)
				continue
			}
			latest := i == len(c.refresh)-1
			switch {
			case !latest && tok.UsedAt.IsZero():
				t.Errorf("round %d: %s: refresh token %d was rotated by an answered refresh but is not marked used", round, c.email, i)
			case latest && !c.inflight && !tok.UsedAt.IsZero():
				t.Errorf("round %d: %s: the latest refresh token is marked used, and no refresh of it was sent unanswered", round, c.email)
			}
			if !latest || !c.inflight {
				continue
			}
			// The refresh the kill caught. Upstream refreshes of this
			// user beyond the answered ones: 0 or 1.
			extra := upstream[c.email] - c.refreshed
			committed := !tok.UsedAt.IsZero()
			// The grant update is in the rotation's commit: updated after
			// the request was sent exactly when the token is marked used.
			updated := g.UpdatedAt.After(c.sentAt)
			r.inflight++
			switch {
			case extra < 0 || extra > 1:
				t.Errorf("round %d: %s: the upstream answered %d refreshes, the client saw %d and had one in flight", round, c.email, upstream[c.email], c.refreshed)
			case committed != updated:
				t.Errorf("round %d: %s: half-written rotation: old refresh token used=%v, grant updated after the request=%v (updated %v, sent %v)", round, c.email, committed, updated, g.UpdatedAt, c.sentAt)
			case committed && extra == 0:
				t.Errorf("round %d: %s: the rotation committed without an upstream refresh", round, c.email)
			case committed:
				c.outcome = outcomeRotated
				r.rotated++
			case extra == 1:
				c.outcome = outcomeSpent
				r.spent++
			default:
				c.outcome = outcomeUntouched
				r.untouched++
			}
		}
	}
	// The grants no client knows of come from sign-ins a kill cut short.
	// One whose code exchange committed but whose answer the kill lost is
	// a full grant; one whose code was never exchanged is pending: it
	// expires with its code, crashCodeTTL after its creation, and so only
	// kills less than crashCodeTTL ago can have left one that is still live.
	recentKills := 0
	for _, k := range h.kills {
		if k.After(now.Add(-crashCodeTTL)) {
			recentKills++
		}
	}
	for _, g := range grants {
		switch {
		case known[g.ID]:
		case g.ExpiresAt.Equal(g.CreatedAt.Add(crashCodeTTL)):
			r.orphans++
			r.pending++
		case !g.ExpiresAt.Before(g.CreatedAt.Add(crashRefreshTTL)):
			r.orphans++
		default:
			t.Errorf("round %d: grant %s no client knows of is neither pending (expiring %v after its creation) nor exchanged (at least %v): %+v", round, g.ID, crashCodeTTL, crashRefreshTTL, redactGrant(g))
		}
	}
	if r.orphans > h.orphanBound {
		t.Errorf("round %d: %d grants belong to no client's returned tokens; at most %d sign-ins were cut short", round, r.orphans, h.orphanBound)
	}
	if bound := recentKills * crashWorkers; r.pending > bound {
		t.Errorf("round %d: %d pending grants (code never exchanged) are live; at most %d sign-ins were cut short in the last %v", round, r.pending, bound, crashCodeTTL)
	}
}

// redactGrant is g without its sealed upstream token, for messages.
func redactGrant(g store.Grant) store.Grant {
	g.UpstreamRefreshToken = []byte(fmt.Sprintf("<%d bytes>", len(g.UpstreamRefreshToken)))
	return g
}

// checkRefresh refreshes every live chain once with its latest refresh
// token and checks the new access token; in-flight refreshes get the
// answer their store state calls for. It returns how many refresh tokens
// it checked.
func (h *crashHarness) checkRefresh(round int, r *crashRound) int {
	t := h.t
	chains := h.alive()
	crashParallel(chains, func(c *crashChain) {
		rt := c.refresh[len(c.refresh)-1]
		status, tok, err := crashRefresh(h.client, h.public, c.clientID, rt)
		if err != nil {
			t.Errorf("round %d: %s: refresh after the restart: %v", round, c.email, err)
			return
		}
		switch c.outcome {
		case outcomeRotated, outcomeSpent:
			// Reuse of a rotated token, or a spent upstream session: the
			// grant ends, and its access tokens with it.
			if status != http.StatusBadRequest || tok.Error != "invalid_grant" {
				t.Errorf("round %d: %s: refresh with the token of a refresh caught in flight (%s) = %d %q, want 400 invalid_grant", round, c.email, c.outcome, status, tok.Error)
				return
			}
			if code, body, err := crashListTools(h.client, h.public, c.access[len(c.access)-1]); err != nil || code != http.StatusUnauthorized {
				t.Errorf("round %d: %s: tools/list after the grant ended = %d %.200s (%v), want 401", round, c.email, code, body, err)
			}
			h.mu.Lock()
			c.ended = c.outcome.String()
			c.inflight, c.outcome = false, outcomeNone
			h.mu.Unlock()
			return
		}
		if status != http.StatusOK || tok.AccessToken == "" || tok.RefreshToken == "" {
			t.Errorf("round %d: %s: refresh of the latest refresh token after the restart = %d %q, want 200 with tokens", round, c.email, status, tok.Error)
			return
		}
		h.mu.Lock()
		c.access = append(c.access, tok.AccessToken)
		c.refresh = append(c.refresh, tok.RefreshToken)
		c.refreshed++
		c.inflight, c.outcome = false, outcomeNone
		h.mu.Unlock()
		if code, body, err := crashListTools(h.client, h.public, tok.AccessToken); err != nil || code != http.StatusOK || !strings.Contains(body, `"name":"add"`) {
			t.Errorf("round %d: %s: tools/list with the refreshed access token = %d %.200s (%v), want 200 listing add", round, c.email, code, body, err)
		}
	})
	return len(chains)
}

// crashParallel calls f on every item from four goroutines.
func crashParallel[T any](items []T, f func(T)) {
	ch := make(chan T)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				f(it)
			}
		}()
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
}

// crashAnswer is a /token response, success or error.
type crashAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
}

// crashRefresh redeems a public client's refresh token at /token. An error
// means no complete answer arrived.
func crashRefresh(c *http.Client, public, clientID, rt string) (int, crashAnswer, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}
	return crashPostToken(c, public, form)
}

func crashPostToken(c *http.Client, public string, form url.Values) (int, crashAnswer, error) {
	resp, err := c.PostForm(public+"/token", form)
	if err != nil {
		return 0, crashAnswer{}, err
	}
	defer resp.Body.Close()
	var tok crashAnswer
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return 0, crashAnswer{}, fmt.Errorf("read the /token answer (%d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode == http.StatusOK && (tok.AccessToken == "" || tok.RefreshToken == "") {
		return 0, crashAnswer{}, fmt.Errorf("/token answered 200 without both tokens")
	}
	return resp.StatusCode, tok, nil
}

// crashListTools posts a lone tools/list to /mcp with token.
func crashListTools(c *http.Client, public, token string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, public+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// crashSignIn runs one client's whole sign-in without the go-sdk (so that
// every step's error is an error, not a test failure, and the client id is
// known): registration, /authorize with PKCE, the consent page, the
// upstream login as email, the callback and the code exchange.
func crashSignIn(api *http.Client, public, email string) (*crashChain, error) {
	reg, _ := json.Marshal(map[string]any{
		"redirect_uris":              []string{crashRedirect},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"client_name":                "crash client",
	})
	resp, err := api.Post(public+"/register", "application/json", bytes.NewReader(reg))
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	var client struct {
		ClientID string `json:"client_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&client)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || client.ClientID == "" {
		return nil, fmt.Errorf("register: %d (%v)", resp.StatusCode, err)
	}

	verifier := store.NewSecret()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {client.ClientID},
		"redirect_uri":          {crashRedirect},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"state":                 {"s"},
		"resource":              {public + "/mcp"},
	}
	loc, err := crashWalk(public+"/authorize?"+q.Encode(), email)
	if err != nil {
		return nil, err
	}
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("state") != "s" {
		return nil, fmt.Errorf("redirect without a code: %s", loc.Query().Get("error"))
	}
	status, tok, err := crashPostToken(api, public, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {crashRedirect},
		"client_id": {client.ClientID}, "code_verifier": {verifier}, "resource": {public + "/mcp"},
	})
	if err != nil {
		return nil, fmt.Errorf("code exchange: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("code exchange answered %d %q", status, tok.Error)
	}
	return &crashChain{email: email, clientID: client.ClientID, access: []string{tok.AccessToken}, refresh: []string{tok.RefreshToken}}, nil
}

// crashWalk follows a browser through the sign-in pages from target:
// it approves the consent page, clicks email's button on the upstream
// login page, and returns the redirect to crashRedirect. It keeps no
// connection alive, so the upstream sees its connections close.
func crashWalk(target, email string) (*url.URL, error) {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	for range 20 {
		resp, err := browser.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(loc.String(), crashRedirect) {
				return loc, nil
			}
			req, _ = http.NewRequest(http.MethodGet, loc.String(), nil)
		case resp.StatusCode == http.StatusOK && strings.Contains(resp.Header.Get("Content-Type"), "text/html"):
			form := url.Values{}
			for _, m := range hiddenInput.FindAllStringSubmatch(string(body), -1) {
				form.Set(m[1], html.UnescapeString(m[2]))
			}
			switch {
			case form.Has("login_id"): // the upstream's login page
				form.Set("email", email)
			case form.Has("request"): // our consent page
				form.Set("action", "approve")
			default:
				return nil, fmt.Errorf("unexpected page %s (%d bytes)", resp.Request.URL.Path, len(body))
			}
			u, _ := resp.Request.URL.Parse("authorize")
			req, _ = http.NewRequest(http.MethodPost, u.String(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			return nil, fmt.Errorf("%s answered %d", resp.Request.URL.Path, resp.StatusCode)
		}
	}
	return nil, errors.New("too many sign-in steps")
}
