package mcpserver

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestDrain: Drain lets a running tool call finish, then ends every open
// session and stream (stateful, SSE), so a server's graceful shutdown does
// not wait for clients that would listen forever.
func TestDrain(t *testing.T) {
	e := newEnv(t, nil)
	caller, _ := e.connect(t, wires[1], "alice") // 2025-11-25, stateful
	idle := map[string]*mcp.ClientSession{}
	for _, w := range []wire{wires[2], wires[3]} {
		idle[w.name], _ = e.connect(t, w, "bob")
	}

	// The call goes as a raw POST on the stateful session, so the test
	// reads exactly what the server sent on its stream.
	h := withHeader(jsonHeaders, "Mcp-Session-Id", caller.ID())
	h.Set("Mcp-Protocol-Version", wires[1].version)
	req, _ := http.NewRequest(http.MethodPost, e.url+"/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow","arguments":{"steps":10},"_meta":{"progressToken":"drain"}}}`))
	req.Header = h
	req.Header.Set("Authorization", "Bearer alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			t.Fatalf("the call's stream ended before any progress: %v", err)
		}
		if strings.Contains(line, "notifications/progress") {
			break // the call is running in the plugin
		}
	}
	drained := make(chan struct{})
	go func() {
		e.srv.Drain(context.Background())
		close(drained)
	}()
	rest, err := io.ReadAll(body)
	if err != nil || !strings.Contains(string(rest), `"id":7,"result"`) || !strings.Contains(string(rest), `"text":"done"`) || strings.Contains(string(rest), `"isError":true`) {
		t.Fatalf("the call running when the drain started answered %q (%v); want its result \"done\"", rest, err)
	}
	select {
	case <-drained:
	case <-time.After(30 * time.Second):
		t.Fatal("Drain did not return after the last call finished")
	}
	for name, cs := range map[string]*mcp.ClientSession{"caller": caller, wires[2].name: idle[wires[2].name], wires[3].name: idle[wires[3].name]} {
		ended := make(chan error, 1)
		go func() { ended <- cs.Wait() }()
		select {
		case <-ended:
		case <-time.After(30 * time.Second):
			t.Errorf("%s: the session did not end after the drain", name)
		}
	}
}

// TestInflight: wait returns once the last call ends, or when its context
// is done.
func TestInflight(t *testing.T) {
	var f inflight
	f.wait(context.Background()) // nothing running: returns at once
	f.begin()
	f.begin()
	done := make(chan struct{})
	go func() { f.wait(context.Background()); close(done) }()
	f.end()
	f.end()
	<-done
	f.begin()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.wait(ctx) // a call still runs, but the deadline passed
	f.end()
}
