package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/plugin"
)

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

func call(t *testing.T, cs *mcp.ClientSession, name string, args any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// TestListAndCall: alice (image_generation) and bob (none) over every
// wire: what each lists, what each may call, and how a denial reads.
func TestListAndCall(t *testing.T) {
	e := newEnv(t, nil)
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			alice, _ := e.connect(t, w, "alice")
			bob, _ := e.connect(t, w, "bob")

			if got, want := toolNames(t, alice), []string{"access", "crash", "echo", "paint", "slow"}; !slices.Equal(got, want) {
				t.Errorf("alice lists %v, want %v", got, want)
			}
			if got, want := toolNames(t, bob), []string{"access", "crash", "echo", "slow"}; !slices.Equal(got, want) {
				t.Errorf("bob lists %v, want %v", got, want)
			}

			res := call(t, alice, "paint", map[string]any{"prompt": "a dot"})
			if res.IsError {
				t.Fatalf("alice paint: tool error %q", text(res))
			}
			var img *mcp.ImageContent
			for _, c := range res.Content {
				if ic, ok := c.(*mcp.ImageContent); ok {
					img = ic
				}
			}
			if img == nil || img.MIMEType != "image/png" || !bytes.HasPrefix(img.Data, []byte("\x89PNG")) {
				t.Errorf("alice paint: want PNG image content, got %+v", res.Content)
			}
			if got := text(res); got != "painted a dot" {
				t.Errorf("alice paint text = %q", got)
			}
			if r := e.audit.waitRecord(t, "user_alice", "paint"); r.Decision != "allow" || r.Outcome != "ok" || r.Plugin != "gated" || r.ClientID != "client_test" || r.OrganizationID != "org_acme" {
				t.Errorf("alice paint audit = %+v", r)
			}

			res = call(t, bob, "paint", map[string]any{"prompt": "a dot"})
			if !res.IsError || text(res) != "paint needs permission image_generation; you have none" {
				t.Errorf("bob paint = IsError %v %q, want the denial naming image_generation", res.IsError, text(res))
			}
			if r := e.audit.waitRecord(t, "user_bob", "paint"); r.Decision != "deny" || r.Outcome != "denied" {
				t.Errorf("bob paint audit = %+v", r)
			}

			for _, cs := range []*mcp.ClientSession{alice, bob} {
				res = call(t, cs, "echo", map[string]any{"message": "hi"})
				if res.IsError {
					t.Fatalf("echo: tool error %q", text(res))
				}
				if got := compactJSON(t, res.StructuredContent); got != `{"length":2,"message":"hi"}` {
					t.Errorf("echo structured = %s", got)
				}
			}
		})
	}
	if got := metricValue(t, e.reg, "toolgate_mcp_tool_calls_total", "paint", "denied"); got != float64(len(wires)) {
		t.Errorf("paint denied counter = %v, want %d", got, len(wires))
	}
	if got := metricValue(t, e.reg, "toolgate_mcp_tool_calls_total", "paint", "ok"); got != float64(len(wires)) {
		t.Errorf("paint ok counter = %v, want %d", got, len(wires))
	}
	if got := metricValue(t, e.reg, "toolgate_mcp_tool_call_duration_seconds", "echo", "ok"); got != float64(2*len(wires)) {
		t.Errorf("echo ok duration samples = %v, want %d", got, 2*len(wires))
	}
}

// TestSchemasPassThrough: input and output schemas come from the manifest.
func TestSchemasPassThrough(t *testing.T) {
	e := newEnv(t, nil)
	cs, _ := e.connect(t, wires[0], "alice")
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := e.host.Tools()
	for _, tool := range res.Tools {
		pt, ok := snap.Tool(tool.Name)
		if !ok {
			t.Fatalf("listed %q is not in the host's snapshot", tool.Name)
		}
		if got, want := compactJSON(t, tool.InputSchema), compactJSON(t, pt.Spec.InputSchema); got != want {
			t.Errorf("%s input schema = %s, want %s", tool.Name, got, want)
		}
		if len(pt.Spec.OutputSchema) > 0 {
			if got, want := compactJSON(t, tool.OutputSchema), compactJSON(t, pt.Spec.OutputSchema); got != want {
				t.Errorf("%s output schema = %s, want %s", tool.Name, got, want)
			}
		}
	}
}

func compactJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(x)
	return string(b)
}

// TestHideDenied: a denied tool answers like an unknown tool.
func TestHideDenied(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.HideDenied = true })
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			bob, _ := e.connect(t, w, "bob")
			_, err := bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "paint", Arguments: map[string]any{"prompt": "x"}})
			if err == nil || !strings.Contains(err.Error(), `unknown tool "paint"`) {
				t.Fatalf("bob paint with HideDenied: err = %v, want unknown tool", err)
			}
			_, errUnknown := bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "nosuchtool", Arguments: map[string]any{}})
			if errUnknown == nil || strings.Replace(errUnknown.Error(), "nosuchtool", "paint", 1) != err.Error() {
				t.Errorf("denied error %q does not read like the unknown-tool error %q", err, errUnknown)
			}
			if r := e.audit.waitRecord(t, "user_bob", "paint"); r.Outcome != "denied" {
				t.Errorf("audit = %+v", r)
			}
			alice, _ := e.connect(t, w, "alice")
			if res := call(t, alice, "paint", map[string]any{"prompt": "x"}); res.IsError {
				t.Errorf("alice paint: %q", text(res))
			}
		})
	}
}

// TestPluginFailures: every failure of a plugin is a readable tool error.
func TestPluginFailures(t *testing.T) {
	e := newEnv(t, nil)
	cs, _ := e.connect(t, wires[1], "alice")
	tests := []struct {
		tool    string
		args    any
		outcome string
		text    string
	}{
		{"crash", map[string]any{}, string(plugin.ErrKindTrap), `plugin "gated" tool "crash"`},
		{"echo", map[string]any{"message": "x", "fail": true}, "tool_error", "echo was asked to fail"},
		{"slow", map[string]any{"steps": 0}, "tool_error", "steps must be positive"},
		{"echo", map[string]any{"message": 5}, string(plugin.ErrKindGuest), "message"},
	}
	for _, tt := range tests {
		t.Run(tt.tool+"-"+tt.outcome, func(t *testing.T) {
			res := call(t, cs, tt.tool, tt.args)
			if !res.IsError || !strings.Contains(text(res), tt.text) {
				t.Errorf("IsError %v, text %q; want a tool error containing %q", res.IsError, text(res), tt.text)
			}
			if r := e.audit.waitRecord(t, "user_alice", tt.tool); r.Outcome != tt.outcome || r.Decision != "allow" {
				t.Errorf("audit = %+v, want outcome %s", r, tt.outcome)
			}
		})
	}
	// The server still serves after the crash.
	if res := call(t, cs, "echo", map[string]any{"message": "still here"}); res.IsError {
		t.Errorf("echo after crash: %q", text(res))
	}
}

// TestToolAccessForPlugins: a plugin granted list_tools sees the caller's
// view through gate.ToolAccess.
func TestToolAccessForPlugins(t *testing.T) {
	e := newEnv(t, nil)
	bob, _ := e.connect(t, wires[0], "bob")
	got := text(call(t, bob, "access", map[string]any{}))
	if !strings.Contains(got, "paint: needs permission image_generation") || !strings.Contains(got, "echo: allowed") {
		t.Errorf("bob's access = %q", got)
	}
	alice, _ := e.connect(t, wires[0], "alice")
	if got := text(call(t, alice, "access", map[string]any{})); !strings.Contains(got, "paint: allowed") {
		t.Errorf("alice's access = %q", got)
	}
}

// TestProgress: a plugin's progress reaches a client that asked for it,
// before the result.
func TestProgress(t *testing.T) {
	e := newEnv(t, nil)
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			cs, ev := e.connect(t, w, "bob")
			params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"steps": 3}}
			params.SetProgressToken("tok-1")
			res, err := cs.CallTool(context.Background(), params)
			if err != nil || res.IsError {
				t.Fatalf("slow: %v %v", err, res)
			}
			var got []float64
			for len(got) < 3 {
				select {
				case p := <-ev.progress:
					if p.ProgressToken != "tok-1" || p.Total != 3 || p.Message != "step" {
						t.Errorf("progress = %+v", p)
					}
					got = append(got, p.Progress)
				case <-time.After(30 * time.Second):
					t.Fatalf("got progress %v, want 3 reports", got)
				}
			}
			if !slices.Equal(got, []float64{1, 2, 3}) {
				t.Errorf("progress = %v, want [1 2 3]", got)
			}
		})
	}
}

// TestCancellation: cancelling a call stops the plugin call.
func TestCancellation(t *testing.T) {
	e := newEnv(t, nil)
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			cs, ev := e.connect(t, w, "alice")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"steps": 100000}}
			params.SetProgressToken("slow-1")
			errc := make(chan error, 1)
			go func() {
				_, err := cs.CallTool(ctx, params)
				errc <- err
			}()
			select {
			case <-ev.progress: // the plugin is running
			case <-time.After(30 * time.Second):
				t.Fatal("no progress from the slow call")
			}
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("CallTool after cancel: %v", err)
			}
			r := e.audit.waitRecord(t, "user_alice", "slow")
			if r.Outcome != string(plugin.ErrKindCancelled) || r.Duration > time.Minute {
				t.Errorf("audit of the cancelled call = %+v", r)
			}
		})
	}
}

// TestDropInPluginAppears: a plugin dropped into the folder during live
// sessions is listed, and clients that can hear it are told.
func TestDropInPluginAppears(t *testing.T) {
	e := newEnv(t, nil)
	add := buildWasm(t, "add", "../../plugins/add")
	type conn struct {
		w  wire
		cs *mcp.ClientSession
		ev *clientEvents
	}
	var conns []conn
	for _, w := range wires {
		cs, ev := e.connect(t, w, "bob")
		toolNames(t, cs) // the client has learned the list
		conns = append(conns, conn{w, cs, ev})
	}
	b, err := os.ReadFile(add)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dropIn, "add.wasm"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		select {
		case <-c.ev.listChanged:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: no notifications/tools/list_changed after the drop-in", c.w.name)
		}
		if names := toolNames(t, c.cs); !slices.Contains(names, "add") {
			t.Errorf("%s: tools after drop-in = %v, want add", c.w.name, names)
		}
		res := call(t, c.cs, "add", map[string]any{"a": 2, "b": 3})
		if text(res) != "5" {
			t.Errorf("%s: add = %q", c.w.name, text(res))
		}
	}
}

// TestPermissionChangeNotifies: when a session's caller comes back with
// new permissions (a refreshed token), the session is told its list
// changed, and sessions whose view did not change are not.
func TestPermissionChangeNotifies(t *testing.T) {
	type decision struct {
		user string
		sent bool
	}
	decisions := make(chan decision, 64)
	e := newEnv(t, nil)
	e.srv.onListChanged = func(user string, sent bool) { decisions <- decision{user, sent} }
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			u := testUsers()
			e.users.set("bob", u["bob"])
			bob, bobEv := e.connect(t, w, "bob")
			alice, aliceEv := e.connect(t, w, "alice")
			if names := toolNames(t, bob); slices.Contains(names, "paint") {
				t.Fatalf("bob lists paint before the change: %v", names)
			}
			toolNames(t, alice)

			promoted := u["bob"]
			promoted.Permissions = []string{"image_generation"}
			e.users.set("bob", promoted)
			call(t, bob, "echo", map[string]any{"message": "refresh"}) // first request with the new token
			select {
			case <-bobEv.listChanged:
			case <-time.After(30 * time.Second):
				t.Fatal("bob was not told his list changed")
			}
			// The broadcast reaches every tracked session; wait for the
			// server's decision on alice's and bob's.
			got := map[string]bool{}
			for len(got) < 2 {
				select {
				case d := <-decisions:
					if d.user == "user_alice" || d.user == "user_bob" {
						got[d.user] = d.sent
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("list_changed decisions so far: %v", got)
				}
			}
			if !got["user_bob"] || got["user_alice"] {
				t.Errorf("list_changed sent = %v, want bob only", got)
			}
			select {
			case <-aliceEv.listChanged:
				t.Error("alice was told her list changed; it did not")
			default:
			}
			if names := toolNames(t, bob); !slices.Contains(names, "paint") {
				t.Errorf("bob after the change lists %v", names)
			}
			for len(decisions) > 0 {
				<-decisions
			}
		})
	}
}
