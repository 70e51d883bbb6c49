package mcpserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/plugin"
)

// BenchmarkToolCall measures one tools/call of the gated plugin's echo
// tool end to end (go-sdk client, HTTP over loopback, this package, the
// plugin host), per wire, next to the plugin host's own call.
//
//	go test ./core/mcpserver -run '^$' -bench ToolCall -benchtime 2s
func BenchmarkToolCall(b *testing.B) {
	e := newEnv(b, func(c *Config) {
		c.Audit = nopAudit{}
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	b.Run("host-only", func(b *testing.B) {
		args := json.RawMessage(`{"message":"hi"}`)
		caller := testUsers()["alice"].ABI()
		for b.Loop() {
			if _, err := e.host.Call(context.Background(), "echo", args, caller, plugin.CallOptions{CallID: "bench"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, w := range wires {
		b.Run(w.name, func(b *testing.B) {
			cs, _ := e.connect(b, w, "alice")
			params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi"}}
			for b.Loop() {
				res, err := cs.CallTool(context.Background(), params)
				if err != nil || res.IsError {
					b.Fatal(err, res)
				}
			}
		})
	}
}
