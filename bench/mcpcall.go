package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// protocolVersion is the MCP revision every request announces. Both SDKs
// accept a lone tools/call of this revision without initialize on a
// stateless server, and toolgate routes such a request to its stateless
// handler (core/mcpserver/doc.go). 2026-07-28 is not used: the TypeScript
// SDK 1.32.2 does not speak it.
const protocolVersion = "2025-06-18"

// maxResponseBytes bounds what is read of one response.
const maxResponseBytes = 16 << 20

// rpcResponse is a JSON-RPC response carrying an MCP result.
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  *struct {
		Content []struct {
			Type     string `json:"type"`
			Text     string `json:"text"`
			MIMEType string `json:"mimeType"`
			Data     string `json:"data"`
		} `json:"content"`
		IsError bool `json:"isError"`
		Tools   []struct {
			Name string `json:"name"`
		} `json:"tools"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// addBody is the tools/call request of add(a, b) with JSON-RPC id.
func addBody(id, a, b int64) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"add","arguments":{"a":%d,"b":%d}}}`, id, a, b)
}

// newMCPRequest is a POST of body to the MCP endpoint url with the headers
// both SDKs require, and the bearer token when there is one.
func newMCPRequest(ctx context.Context, url, token string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", protocolVersion)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// parseResponse finds the JSON-RPC response with id in an MCP answer,
// either an application/json body or a text/event-stream whose events
// carry JSON-RPC messages (notifications before the response are skipped).
func parseResponse(contentType string, body []byte, id int64) (*rpcResponse, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("content type %q: %w", contentType, err)
	}
	want := strconv.FormatInt(id, 10)
	switch mt {
	case "application/json":
		var r rpcResponse
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("decode response: %w", err)
		}
		if string(r.ID) != want {
			return nil, fmt.Errorf("response id %s, want %s", r.ID, want)
		}
		return &r, nil
	case "text/event-stream":
		for _, data := range sseData(body) {
			var r rpcResponse
			if json.Unmarshal(data, &r) != nil || string(r.ID) != want {
				continue
			}
			return &r, nil
		}
		return nil, fmt.Errorf("no response with id %s in the event stream", want)
	default:
		return nil, fmt.Errorf("unexpected content type %q", contentType)
	}
}

// sseData returns the data of each event of an event stream, its data
// lines joined with newlines.
func sseData(body []byte) [][]byte {
	var events [][]byte
	var cur []byte
	have := false
	flush := func() {
		if have {
			events = append(events, cur)
		}
		cur, have = nil, false
	}
	for line := range bytes.Lines(body) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			flush()
			continue
		}
		v, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		v = bytes.TrimPrefix(v, []byte(" "))
		if have {
			cur = append(cur, '\n')
		}
		cur = append(cur, v...)
		have = true
	}
	flush()
	return events
}

// toolText checks that r is a successful tool result and returns its
// first text content.
func toolText(r *rpcResponse) (string, error) {
	switch {
	case r.Error != nil:
		return "", fmt.Errorf("protocol error %d: %s", r.Error.Code, r.Error.Message)
	case r.Result == nil:
		return "", errors.New("response has neither result nor error")
	}
	text := ""
	for _, c := range r.Result.Content {
		if c.Type == "text" {
			text = c.Text
			break
		}
	}
	if r.Result.IsError {
		return "", fmt.Errorf("tool error: %s", text)
	}
	return text, nil
}

// checkAdd checks an HTTP answer to addBody(id, a, b): status 200 and the
// sum as the tool's text.
func checkAdd(resp *http.Response, id, a, b int64) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	r, err := parseResponse(resp.Header.Get("Content-Type"), body, id)
	if err != nil {
		return err
	}
	text, err := toolText(r)
	if err != nil {
		return err
	}
	if want := strconv.FormatInt(a+b, 10); text != want {
		return fmt.Errorf("add(%d, %d) = %q, want %q", a, b, text, want)
	}
	return nil
}

// rpc posts one JSON-RPC request to the MCP endpoint and returns its
// response.
func rpc(ctx context.Context, client *http.Client, url, token string, id int64, method string, params any) (*rpcResponse, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encode params: %w", err)
	}
	body := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, p)
	req, err := newMCPRequest(ctx, url, token, body)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s: read response: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d: %.200s", method, resp.StatusCode, data)
	}
	r, err := parseResponse(resp.Header.Get("Content-Type"), data, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return r, nil
}

// openSession initializes a stateful session on the MCP endpoint url and
// acknowledges it with notifications/initialized; it returns the session
// id.
func openSession(ctx context.Context, client *http.Client, url, token string, id int64) (string, error) {
	body := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"toolgate-bench","version":"1.0.0"}}}`, id, protocolVersion)
	req, err := newMCPRequest(ctx, url, token, body)
	if err != nil {
		return "", err
	}
	req.Header.Del("Mcp-Protocol-Version") // an initialize request negotiates it
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("initialize: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("initialize: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("initialize: status %d: %.200s", resp.StatusCode, data)
	}
	r, err := parseResponse(resp.Header.Get("Content-Type"), data, id)
	if err != nil {
		return "", fmt.Errorf("initialize: %w", err)
	}
	if r.Error != nil {
		return "", fmt.Errorf("initialize: protocol error %d: %s", r.Error.Code, r.Error.Message)
	}
	session := resp.Header.Get("Mcp-Session-Id")
	req, err = newMCPRequest(ctx, url, token, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return "", err
	}
	req.Header.Set("Mcp-Session-Id", session)
	resp, err = client.Do(req)
	if err != nil {
		return "", fmt.Errorf("notifications/initialized: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("notifications/initialized: status %d", resp.StatusCode)
	}
	return session, nil
}
