package mcpserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/sdk/abi"
)

// fakeHost is a Host whose snapshots the test sets.
type fakeHost struct {
	mu   sync.Mutex
	snap plugin.Snapshot
	subs []func(plugin.Event)
}

func (h *fakeHost) Tools() plugin.Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snap
}

func (h *fakeHost) Subscribe(fn func(plugin.Event)) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs = append(h.subs, fn)
	return func() {}
}

func (h *fakeHost) Call(_ context.Context, tool string, _ json.RawMessage, caller abi.Caller, _ plugin.CallOptions) (abi.CallResult, error) {
	return abi.CallResult{Content: []abi.Content{{Type: abi.ContentText, Text: tool + " for " + caller.UserID}}}, nil
}

// publish swaps in a new set, as a reload does.
func (h *fakeHost) publish(tools ...plugin.Tool) {
	h.mu.Lock()
	h.snap = plugin.Snapshot{Generation: h.snap.Generation + 1, Tools: tools}
	snap, subs := h.snap, slices.Clone(h.subs)
	h.mu.Unlock()
	for _, fn := range subs {
		fn(plugin.Event{Snapshot: snap})
	}
}

func fakeTool(name string, perms ...string) plugin.Tool {
	return plugin.Tool{
		Name: name, Plugin: "fake",
		Spec:  abi.Tool{Name: name, Description: "Tool " + name + ".", InputSchema: json.RawMessage(`{"type":"object"}`)},
		Rules: plugin.Rules{Permissions: perms},
	}
}

// TestReloadsFollowRules: a reload that changes a tool's rules or removes
// a tool reaches exactly the sessions whose view changed.
func TestReloadsFollowRules(t *testing.T) {
	host := &fakeHost{}
	host.publish(fakeTool("a"), fakeTool("b", "x"))
	type decision struct {
		user string
		sent bool
	}
	decisions := make(chan decision, 64)
	u := &users{m: testUsers()}
	srv, err := New(Config{Host: host, CallerFromContext: callerFromContext, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.onListChanged = func(user string, sent bool) { decisions <- decision{user, sent} }
	ts := httptest.NewServer(u.middleware(srv.Handler()))
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		if err := srv.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	e := &env{srv: srv, url: ts.URL, users: u}
	w := wires[1] // 2025-11-25, stateful
	alice, aliceEv := e.connect(t, w, "alice")
	bob, bobEv := e.connect(t, w, "bob")

	// alice holds image_generation, not x: both see only a.
	for _, cs := range []*mcp.ClientSession{alice, bob} {
		if got := toolNames(t, cs); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("before: %v", got)
		}
	}
	awaitDecisions := func(want map[string]bool) {
		t.Helper()
		got := map[string]bool{}
		for len(got) < len(want) {
			select {
			case d := <-decisions:
				got[d.user] = d.sent
			case <-time.After(30 * time.Second):
				t.Fatalf("decisions %v, want %v", got, want)
			}
		}
		for user, sent := range want {
			if got[user] != sent {
				t.Errorf("%s: sent = %v, want %v", user, got[user], sent)
			}
		}
	}
	awaitNotice := func(name string, ch chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s was not told the list changed", name)
		}
	}

	// The operator opens b to everyone: both views change.
	host.publish(fakeTool("a"), fakeTool("b"))
	awaitDecisions(map[string]bool{"user_alice": true, "user_bob": true})
	awaitNotice("alice", aliceEv.listChanged)
	awaitNotice("bob", bobEv.listChanged)
	for _, cs := range []*mcp.ClientSession{alice, bob} {
		if got := toolNames(t, cs); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("after opening b: %v", got)
		}
	}

	// b now needs image_generation: only bob's view changes.
	host.publish(fakeTool("a"), fakeTool("b", "image_generation"))
	awaitDecisions(map[string]bool{"user_alice": false, "user_bob": true})
	awaitNotice("bob", bobEv.listChanged)
	if got := toolNames(t, bob); !slices.Equal(got, []string{"a"}) {
		t.Errorf("bob after gating b: %v", got)
	}
	res, err := bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "b", Arguments: map[string]any{}})
	if err != nil || !res.IsError || text(res) != "b needs permission image_generation; you have none" {
		t.Errorf("bob calls b: %v %+v", err, res)
	}
	if res := call(t, alice, "b", map[string]any{}); res.IsError || text(res) != "b for user_alice" {
		t.Errorf("alice calls b: %q", text(res))
	}

	// a is removed: both views change, and calling it is an unknown tool.
	host.publish(fakeTool("b", "image_generation"))
	awaitDecisions(map[string]bool{"user_alice": true, "user_bob": true})
	if got := toolNames(t, alice); !slices.Equal(got, []string{"b"}) {
		t.Errorf("alice after removing a: %v", got)
	}
	if _, err := alice.CallTool(context.Background(), &mcp.CallToolParams{Name: "a", Arguments: map[string]any{}}); err == nil {
		t.Error("calling a removed tool succeeded")
	}
}
