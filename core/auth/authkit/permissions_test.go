package authkit_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/toolgate/toolgate/core/auth"
	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/auth/devauthkit"
)

// Upstream is the membership permission source of resource-server mode.
// The check lives here because authkit must not import core/auth.
var _ auth.PermissionSource = (*authkit.Upstream)(nil)

// permClock is a settable clock.
type permClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *permClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *permClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingDev is a development AuthKit behind a handler that counts the
// permission lookups' requests and can answer in its place.
type countingDev struct {
	dev         *devauthkit.Server
	url         string // API base URL
	client      *http.Client
	memberships atomic.Int64
	roles       atomic.Int64
	// override, when it returns true, has answered the request itself.
	override atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

func newCountingDev(t *testing.T, users []devauthkit.User) *countingDev {
	t.Helper()
	cd := &countingDev{}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cd.count(r)
		if f := cd.override.Load(); f != nil && (*f)(w, r) {
			return
		}
		http.StripPrefix(devauthkit.MountPath, cd.dev).ServeHTTP(w, r)
	}))
	var err error
	cd.dev, err = devauthkit.New(devauthkit.Config{
		ListenAddr:   ts.Listener.Addr().String(),
		BaseURL:      "http://" + ts.Listener.Addr().String() + devauthkit.MountPath,
		RedirectURIs: []string{"http://127.0.0.1:1/callback"},
		Users:        users,
		Key:          signingKey(t),
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("devauthkit.New: %v", err)
	}
	ts.Start()
	t.Cleanup(ts.Close)
	cd.url, cd.client = cd.dev.BaseURL(), ts.Client()
	return cd
}

func (cd *countingDev) count(r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/user_management/organization_memberships"):
		cd.memberships.Add(1)
	case strings.HasSuffix(r.URL.Path, "/roles"):
		cd.roles.Add(1)
	}
}

func (cd *countingDev) setOverride(f func(w http.ResponseWriter, r *http.Request) bool) {
	cd.override.Store(&f)
}

// counts returns the membership and roles requests so far.
func (cd *countingDev) counts() [2]int64 {
	return [2]int64{cd.memberships.Load(), cd.roles.Load()}
}

func (cd *countingDev) upstream(t *testing.T, mutate func(*authkit.Config)) *authkit.Upstream {
	t.Helper()
	cfg := authkit.Config{
		ClientID:   cd.dev.ClientID(),
		APIKey:     cd.dev.APIKey(),
		APIBaseURL: cd.url,
		HTTPClient: cd.client,
		Logger:     slog.New(slog.DiscardHandler),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	up, err := authkit.New(cfg)
	if err != nil {
		t.Fatalf("authkit.New: %v", err)
	}
	return up
}

func (cd *countingDev) ids(t *testing.T, email string) (userID, orgID string) {
	t.Helper()
	userID, orgID, ok := cd.dev.IDs(email)
	if !ok {
		t.Fatalf("no dev user %s", email)
	}
	return userID, orgID
}

func TestPermissions(t *testing.T) {
	users := append(devauthkit.DefaultUsers(),
		devauthkit.User{Email: "carol@example.com"}, // no organization
		devauthkit.User{Email: "dave@example.com", Role: "admin", Permissions: []string{"billing"}, Organization: "Globex"},
		devauthkit.User{Email: "erin@example.com", Role: "admin", Permissions: []string{"ignored"}, Organization: "Acme"},
	)
	cd := newCountingDev(t, users)
	up := cd.upstream(t, nil)
	alice, acme := cd.ids(t, "alice@example.com")
	bob, _ := cd.ids(t, "bob@example.com")
	carol, _ := cd.ids(t, "carol@example.com")
	dave, globex := cd.ids(t, "dave@example.com")
	erin, _ := cd.ids(t, "erin@example.com")

	tests := []struct {
		name      string
		user, org string
		wantRole  string
		wantPerms []string
		wantErr   error
	}{
		{"alice is an admin who may generate images", alice, acme, "admin", []string{"image_generation"}, nil},
		{"bob is a member without permissions", bob, acme, "member", []string{}, nil},
		{"a role's permissions are its first user's", erin, acme, "admin", []string{"image_generation"}, nil},
		{"roles are per organization", dave, globex, "admin", []string{"billing"}, nil},
		{"unknown user", "user_01UNKNOWN", acme, "", nil, authkit.ErrNoMembership},
		{"member of another organization", alice, globex, "", nil, authkit.ErrNoMembership},
		{"user without an organization", carol, acme, "", nil, authkit.ErrNoMembership},
		{"unknown organization", alice, "org_01UNKNOWN", "", nil, authkit.ErrNoMembership},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role, perms, err := up.Permissions(t.Context(), tt.user, tt.org)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Permissions error = %v, want %v", err, tt.wantErr)
				}
				if errors.Is(err, authkit.ErrUpstreamUnavailable) {
					t.Errorf("error %v also wraps ErrUpstreamUnavailable", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Permissions: %v", err)
			}
			if role != tt.wantRole || perms == nil || !slices.Equal(perms, tt.wantPerms) {
				t.Errorf("Permissions = %q, %#v, want %q, %q", role, perms, tt.wantRole, tt.wantPerms)
			}
		})
	}

	for _, args := range [][2]string{{"", acme}, {alice, ""}} {
		if _, _, err := up.Permissions(t.Context(), args[0], args[1]); err == nil || errors.Is(err, authkit.ErrNoMembership) {
			t.Errorf("Permissions(%q, %q) error = %v, want an argument error", args[0], args[1], err)
		}
	}
}

func TestPermissionsCache(t *testing.T) {
	cd := newCountingDev(t, nil)
	clock := &permClock{t: time.Now()}
	const ttl = 2 * time.Minute
	up := cd.upstream(t, func(c *authkit.Config) {
		c.Now = clock.Now
		c.PermissionsCacheTTL = ttl
	})
	alice, acme := cd.ids(t, "alice@example.com")
	bob, _ := cd.ids(t, "bob@example.com")

	check := func(step, user string, wantPerms []string, wantCounts [2]int64) {
		t.Helper()
		_, perms, err := up.Permissions(t.Context(), user, acme)
		if err != nil {
			t.Fatalf("%s: Permissions: %v", step, err)
		}
		if !slices.Equal(perms, wantPerms) {
			t.Errorf("%s: permissions = %q, want %q", step, perms, wantPerms)
		}
		if got := cd.counts(); got != wantCounts {
			t.Errorf("%s: (membership, roles) requests = %v, want %v", step, got, wantCounts)
		}
	}

	check("first lookup", alice, []string{"image_generation"}, [2]int64{1, 1})
	check("cache hit", alice, []string{"image_generation"}, [2]int64{1, 1})
	check("another user is another entry", bob, []string{}, [2]int64{2, 2})

	// A caller modifying its result does not modify the cache.
	_, perms, _ := up.Permissions(t.Context(), alice, acme)
	perms[0] = "tampered"

	if err := cd.dev.SetPermissions("alice@example.com", []string{"image_generation", "reports"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(ttl - time.Second)
	check("just before expiry the old permissions are served", alice, []string{"image_generation"}, [2]int64{2, 2})
	clock.Advance(time.Second)
	check("at expiry they are looked up again", alice, []string{"image_generation", "reports"}, [2]int64{3, 3})
	check("and cached again", alice, []string{"image_generation", "reports"}, [2]int64{3, 3})
}

func TestPermissionsCacheOff(t *testing.T) {
	for name, mutate := range map[string]func(*authkit.Config){
		"negative ttl":  func(c *authkit.Config) { c.PermissionsCacheTTL = -1 },
		"negative size": func(c *authkit.Config) { c.PermissionsCacheSize = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			cd := newCountingDev(t, nil)
			up := cd.upstream(t, mutate)
			alice, acme := cd.ids(t, "alice@example.com")
			for range 3 {
				if _, _, err := up.Permissions(t.Context(), alice, acme); err != nil {
					t.Fatal(err)
				}
			}
			if got, want := cd.counts(), [2]int64{3, 3}; got != want {
				t.Errorf("(membership, roles) requests = %v, want %v", got, want)
			}
		})
	}
}

func TestPermissionsErrorsAreNotCached(t *testing.T) {
	cd := newCountingDev(t, nil)
	up := cd.upstream(t, nil)
	alice, acme := cd.ids(t, "alice@example.com")

	var down atomic.Bool
	down.Store(true)
	cd.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		if !down.Load() || !strings.HasSuffix(r.URL.Path, "/roles") {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, `{"message":"bad gateway"}`)
		return true
	})

	if _, _, err := up.Permissions(t.Context(), alice, acme); !errors.Is(err, authkit.ErrUpstreamUnavailable) {
		t.Fatalf("with WorkOS failing: error = %v, want ErrUpstreamUnavailable", err)
	}
	down.Store(false)
	role, perms, err := up.Permissions(t.Context(), alice, acme)
	if err != nil || role != "admin" || !slices.Equal(perms, []string{"image_generation"}) {
		t.Fatalf("once WorkOS works: %q, %q, %v; want admin, [image_generation]", role, perms, err)
	}
	if got, want := cd.counts(), [2]int64{2, 2}; got != want {
		t.Errorf("(membership, roles) requests = %v, want %v (the failure was cached?)", got, want)
	}

	// A user without a membership is asked about again too.
	for range 2 {
		if _, _, err := up.Permissions(t.Context(), "user_01NOBODY", acme); !errors.Is(err, authkit.ErrNoMembership) {
			t.Fatalf("error = %v, want ErrNoMembership", err)
		}
	}
	if got, want := cd.counts(), [2]int64{4, 2}; got != want {
		t.Errorf("(membership, roles) requests = %v, want %v", got, want)
	}
}

// answer returns an override answering requests whose path ends in suffix
// with status and body.
func answer(suffix string, status int, body string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, suffix) {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return true
	}
}

func TestPermissionsUpstreamErrors(t *testing.T) {
	const memberships, roles = "/organization_memberships", "/roles"
	tests := []struct {
		name        string
		override    func(w http.ResponseWriter, r *http.Request) bool
		apiKey      string // default: the dev server's
		unavailable bool
		wantStatus  int // of an *UpstreamError, 0 for none
	}{
		{name: "memberships 503", override: answer(memberships, 503, `{"message":"down"}`), unavailable: true, wantStatus: 503},
		{name: "memberships 429", override: answer(memberships, 429, `{"message":"slow down"}`), unavailable: true, wantStatus: 429},
		{name: "roles 500", override: answer(roles, 500, `{"message":"oops"}`), unavailable: true, wantStatus: 500},
		{name: "roles 503 without json", override: answer(roles, 503, `<html>down</html>`), unavailable: true, wantStatus: 503},
		{name: "roles 429", override: answer(roles, 429, `{"message":"slow down"}`), unavailable: true, wantStatus: 429},
		{name: "memberships 403", override: answer(memberships, 403, `{"code":"forbidden","message":"no"}`), wantStatus: 403},
		{name: "roles 404", override: answer(roles, 404, `{"code":"entity_not_found","message":"Organization not found."}`), wantStatus: 404},
		{name: "wrong api key", apiKey: "sk_wrong_key_value", wantStatus: 401},
		{name: "roles not json", override: answer(roles, 200, `not json`)},
		{name: "roles without data", override: answer(roles, 200, `{"object":"list"}`)},
		{name: "ambiguous roles", override: answer(roles, 200, `{"data":[{"slug":"admin"},{"slug":"admin","permissions":["x"]}]}`)},
		{name: "roles response too large", override: answer(roles, 200, `{"data":[{"slug":"admin","description":"`+strings.Repeat("x", 1<<20)+`"}]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cd := newCountingDev(t, nil)
			if tt.override != nil {
				cd.setOverride(tt.override)
			}
			up := cd.upstream(t, func(c *authkit.Config) {
				if tt.apiKey != "" {
					c.APIKey = tt.apiKey
				}
			})
			alice, acme := cd.ids(t, "alice@example.com")
			role, perms, err := up.Permissions(t.Context(), alice, acme)
			if err == nil {
				t.Fatalf("Permissions = %q, %q, want an error", role, perms)
			}
			if got := errors.Is(err, authkit.ErrUpstreamUnavailable); got != tt.unavailable {
				t.Errorf("error %v: wraps ErrUpstreamUnavailable = %v, want %v", err, got, tt.unavailable)
			}
			if errors.Is(err, authkit.ErrNoMembership) || errors.Is(err, authkit.ErrUpstreamGrantInvalid) {
				t.Errorf("error %v wraps a sentinel it must not", err)
			}
			var ue *authkit.UpstreamError
			if tt.wantStatus != 0 && (!errors.As(err, &ue) || ue.StatusCode != tt.wantStatus) {
				t.Errorf("error %v: want an UpstreamError with status %d", err, tt.wantStatus)
			}
			if strings.Contains(err.Error(), cd.dev.APIKey()) || (tt.apiKey != "" && strings.Contains(err.Error(), tt.apiKey)) {
				t.Error("error message contains the api key")
			}
			if role != "" || perms != nil {
				t.Errorf("error came with %q, %q", role, perms)
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		closed := httptest.NewServer(http.NotFoundHandler())
		base := closed.URL
		closed.Close()
		up, err := authkit.New(authkit.Config{ClientID: "client_x", APIKey: "sk_x", APIBaseURL: base, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := up.Permissions(t.Context(), "user_1", "org_1"); !errors.Is(err, authkit.ErrUpstreamUnavailable) {
			t.Errorf("error = %v, want ErrUpstreamUnavailable", err)
		}
	})
}

// handlerTransport serves requests in memory with h, as if from loopback,
// after waiting for gate (when not nil) or the request's cancellation. It
// lets the lookup run inside a synctest bubble.
type handlerTransport struct {
	h    http.Handler
	gate chan struct{}
}

func (ht handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if ht.gate != nil {
		select {
		case <-ht.gate:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	sr := httptest.NewRequestWithContext(req.Context(), req.Method, req.URL.String(), req.Body)
	sr.Header = req.Header.Clone()
	sr.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, sr)
	return rec.Result(), nil
}

// bubbleEnv is a development AuthKit reached through handlerTransport.
type bubbleEnv struct {
	cd   *countingDev
	up   *authkit.Upstream
	gate chan struct{}
}

func newBubbleEnv(t *testing.T) *bubbleEnv {
	t.Helper()
	cd := &countingDev{}
	dev, err := devauthkit.New(devauthkit.Config{
		ListenAddr:   "127.0.0.1:8788",
		BaseURL:      "http://127.0.0.1:8788" + devauthkit.MountPath,
		RedirectURIs: []string{"http://127.0.0.1:1/callback"},
		Key:          signingKey(t),
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	cd.dev = dev
	gate := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cd.count(r)
		http.StripPrefix(devauthkit.MountPath, dev).ServeHTTP(w, r)
	})
	up, err := authkit.New(authkit.Config{
		ClientID:   dev.ClientID(),
		APIKey:     dev.APIKey(),
		APIBaseURL: dev.BaseURL(),
		HTTPClient: &http.Client{Transport: handlerTransport{h: h, gate: gate}},
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &bubbleEnv{cd: cd, up: up, gate: gate}
}

type permOutcome struct {
	role  string
	perms []string
	err   error
}

func TestPermissionsConcurrentMissesShareOneLookup(t *testing.T) {
	signingKey(t) // outside the bubble
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t)
		alice, acme := e.cd.ids(t, "alice@example.com")
		const callers = 8
		out := make(chan permOutcome, callers)
		for range callers {
			go func() {
				role, perms, err := e.up.Permissions(t.Context(), alice, acme)
				out <- permOutcome{role, perms, err}
			}()
		}
		synctest.Wait() // every caller is waiting; one request is at the gate
		if got, want := e.cd.counts(), [2]int64{0, 0}; got != want {
			t.Fatalf("requests past the gate = %v, want %v", got, want)
		}
		close(e.gate)
		for range callers {
			o := <-out
			if o.err != nil || o.role != "admin" || !slices.Equal(o.perms, []string{"image_generation"}) {
				t.Errorf("caller got %q, %q, %v", o.role, o.perms, o.err)
			}
		}
		if got, want := e.cd.counts(), [2]int64{1, 1}; got != want {
			t.Errorf("(membership, roles) requests = %v, want %v", got, want)
		}
	})
}

func TestPermissionsCallerGivingUpDoesNotFailOthers(t *testing.T) {
	signingKey(t)
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t)
		alice, acme := e.cd.ids(t, "alice@example.com")

		ctx, cancel := context.WithCancel(t.Context())
		first := make(chan permOutcome, 1)
		go func() {
			role, perms, err := e.up.Permissions(ctx, alice, acme)
			first <- permOutcome{role, perms, err}
		}()
		synctest.Wait()
		second := make(chan permOutcome, 1)
		go func() {
			role, perms, err := e.up.Permissions(t.Context(), alice, acme)
			second <- permOutcome{role, perms, err}
		}()
		synctest.Wait()
		cancel()
		if o := <-first; !errors.Is(o.err, context.Canceled) {
			t.Errorf("cancelled caller got %q, %q, %v; want context.Canceled", o.role, o.perms, o.err)
		}
		close(e.gate)
		if o := <-second; o.err != nil || o.role != "admin" {
			t.Errorf("second caller got %q, %q, %v; want admin", o.role, o.perms, o.err)
		}
		if got, want := e.cd.counts(), [2]int64{1, 1}; got != want {
			t.Errorf("(membership, roles) requests = %v, want %v", got, want)
		}
	})
}

func TestPermissionsLookupDeadline(t *testing.T) {
	signingKey(t)
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t) // the gate never opens: WorkOS hangs
		alice, acme := e.cd.ids(t, "alice@example.com")
		start := time.Now()
		_, _, err := e.up.Permissions(t.Context(), alice, acme)
		if !errors.Is(err, authkit.ErrUpstreamUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want ErrUpstreamUnavailable wrapping the deadline", err)
		}
		if d := time.Since(start); d < 5*time.Second || d > time.Minute {
			t.Errorf("gave up after %v, want the lookup timeout", d)
		}
	})
}

func TestPermissionsMembershipIsCheckedAgain(t *testing.T) {
	cd := newCountingDev(t, nil)
	alice, acme := cd.ids(t, "alice@example.com")
	bob, _ := cd.ids(t, "bob@example.com")
	membership := func(user, org, status string) string {
		return `{"data":[{"object":"organization_membership","id":"om_1","user_id":"` + user + `","organization_id":"` + org +
			`","role":{"slug":"admin"},"status":"` + status + `","created_at":"2025-01-01T00:00:00.000Z","updated_at":"2025-01-01T00:00:00.000Z"}],"list_metadata":{"before":null,"after":null}}`
	}
	// A WorkOS answer that ignored a filter must not grant a role.
	for name, body := range map[string]string{
		"inactive":           membership(alice, acme, "inactive"),
		"pending":            membership(alice, acme, "pending"),
		"another user":       membership(bob, acme, "active"),
		"another org":        membership(alice, "org_other", "active"),
		"no role":            strings.Replace(membership(alice, acme, "active"), `"slug":"admin"`, `"slug":""`, 1),
		"empty list, nulled": `{"data":null,"list_metadata":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			cd.setOverride(answer("/organization_memberships", http.StatusOK, body))
			up := cd.upstream(t, nil) // a fresh cache for each answer
			role, perms, err := up.Permissions(t.Context(), alice, acme)
			if err == nil {
				t.Fatalf("Permissions = %q, %q; want an error", role, perms)
			}
			if name != "no role" && !errors.Is(err, authkit.ErrNoMembership) {
				t.Errorf("error = %v, want ErrNoMembership", err)
			}
		})
	}
}

func TestPermissionsRoleNotListed(t *testing.T) {
	cd := newCountingDev(t, nil)
	cd.setOverride(answer("/roles", http.StatusOK, `{"object":"list","data":[{"slug":"member","permissions":["x"]}]}`))
	up := cd.upstream(t, nil)
	alice, acme := cd.ids(t, "alice@example.com")
	role, perms, err := up.Permissions(t.Context(), alice, acme)
	if err != nil || role != "admin" || perms == nil || len(perms) != 0 {
		t.Fatalf("Permissions = %q, %#v, %v; want admin without permissions", role, perms, err)
	}
}

func BenchmarkPermissionsCached(b *testing.B) {
	cd := &countingDev{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.StripPrefix(devauthkit.MountPath, cd.dev).ServeHTTP(w, r)
	}))
	defer ts.Close()
	dev, err := devauthkit.New(devauthkit.Config{
		ListenAddr:   ts.Listener.Addr().String(),
		BaseURL:      ts.URL + devauthkit.MountPath,
		RedirectURIs: []string{"http://127.0.0.1:1/callback"},
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	cd.dev = dev
	up, err := authkit.New(authkit.Config{ClientID: dev.ClientID(), APIKey: dev.APIKey(), APIBaseURL: dev.BaseURL(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	alice, acme, _ := dev.IDs("alice@example.com")
	if _, _, err := up.Permissions(b.Context(), alice, acme); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := up.Permissions(b.Context(), alice, acme); err != nil {
			b.Fatal(err)
		}
	}
}
