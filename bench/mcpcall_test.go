package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		id                      int64
		wantText                string
		wantErr                 string // substring of the error; "" for none
	}{
		{"json", "application/json", `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"42"}]}}`, 7, "42", ""},
		{"json with charset", "application/json; charset=utf-8", `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"42"}]}}`, 7, "42", ""},
		{"json wrong id", "application/json", `{"jsonrpc":"2.0","id":8,"result":{"content":[]}}`, 7, "", "response id 8, want 7"},
		{"json garbage", "application/json", `{"jsonrpc":`, 7, "", "decode response"},
		{"sse after a notification", "text/event-stream",
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n" +
				"event: message\r\nid: 1\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\r\ndata: \"result\":{\"content\":[{\"type\":\"text\",\"text\":\"5\"}]}}\r\n\r\n", 3, "5", ""},
		{"sse without the response", "text/event-stream", "data: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}\n\n", 3, "", "no response with id 3"},
		{"sse last event without blank line", "text/event-stream", "data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"9\"}]}}", 3, "9", ""},
		{"protocol error", "application/json", `{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"unknown tool"}}`, 1, "", "protocol error -32602: unknown tool"},
		{"tool error", "application/json", `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"boom"}],"isError":true}}`, 1, "", "tool error: boom"},
		{"no result", "application/json", `{"jsonrpc":"2.0","id":1}`, 1, "", "neither result nor error"},
		{"other content type", "text/plain", `ok`, 1, "", `unexpected content type "text/plain"`},
		{"bad content type", "", `{}`, 1, "", "content type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseResponse(tt.contentType, []byte(tt.body), tt.id)
			var text string
			if err == nil {
				text, err = toolText(r)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v, want text %q", err, tt.wantText)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr == "" && text != tt.wantText:
				t.Fatalf("text %q, want %q", text, tt.wantText)
			}
		})
	}
}

func TestCheckAdd(t *testing.T) {
	answer := func(status int, body string) *http.Response {
		return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}
	}
	tests := []struct {
		name    string
		resp    *http.Response
		wantErr string
	}{
		{"right sum", answer(200, `{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"42"}]}}`), ""},
		{"wrong sum", answer(200, `{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"41"}]}}`), `add(40, 2) = "41", want "42"`},
		{"status", answer(401, `unauthorized`), "status 401: unauthorized"},
		{"wrong id", answer(200, `{"jsonrpc":"2.0","id":6,"result":{"content":[{"type":"text","text":"42"}]}}`), "response id 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkAdd(tt.resp, 5, 40, 2)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("checkAdd = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestAddBody(t *testing.T) {
	got := string(addBody(12, 3, -4))
	want := `{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"add","arguments":{"a":3,"b":-4}}}`
	if got != want {
		t.Fatalf("addBody = %s, want %s", got, want)
	}
}

// FuzzParseResponse feeds arbitrary answers to the response parser: it
// must not panic, and a response it accepts has the asked id.
func FuzzParseResponse(f *testing.F) {
	f.Add("application/json", []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"3"}]}}`))
	f.Add("text/event-stream", []byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"))
	f.Add("text/event-stream", []byte("data:\ndata:\r\n\r\n\n"))
	f.Add("application/json", []byte(`{"id":1,"error":{"code":1,"message":"x"}}`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		r, err := parseResponse(contentType, body, 1)
		if err != nil {
			return
		}
		if string(r.ID) != "1" {
			t.Fatalf("accepted a response with id %s, want 1", r.ID)
		}
		_, _ = toolText(r)
	})
}

// TestOpenSession opens sessions on a stateful go-sdk server: each gets
// its own id.
func TestOpenSession(t *testing.T) {
	server := mcp.NewServer(&mcp.Implementation{Name: "stateful", Version: "1.0.0"}, nil)
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer srv.Close()
	client := newLoadClient(1)
	defer client.CloseIdleConnections()
	seen := map[string]bool{}
	for i := range 3 {
		id, err := openSession(t.Context(), client, srv.URL, "", int64(i+1))
		if err != nil {
			t.Fatalf("openSession: %v", err)
		}
		if id == "" || seen[id] {
			t.Fatalf("session id %q, want a new one (had %v)", id, seen)
		}
		seen[id] = true
	}
	// The stateless floor gives no session: an initialize still answers, with no id.
	floor := httptest.NewServer(floorHandler())
	defer floor.Close()
	if id, err := openSession(t.Context(), client, floor.URL, "", 9); err == nil && id != "" {
		t.Fatalf("stateless server gave session %q", id)
	}
}
