package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/internal/hostcall"
)

// Errors of the host functions, one per abi.Status. Every error a host
// capability returns wraps one of these and the host's message; test with
// errors.Is.
var (
	ErrNotGranted      = errors.New("not granted")
	ErrNotFound        = errors.New("not found")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrTooLarge        = errors.New("too large")
	ErrFailed          = errors.New("failed")
	ErrCancelled       = errors.New("cancelled")
	// ErrUnknownStatus is wrapped for a status this SDK does not know (a
	// newer host).
	ErrUnknownStatus = errors.New("unknown status")
)

// HostError is a failed host function call.
type HostError struct {
	Func    string     // the host function, such as "kv_get"
	Status  abi.Status // the negative status it returned
	Message string     // the host's explanation
}

func (e *HostError) Error() string {
	msg := fmt.Sprintf("sdk: %s: %v", e.Func, e.Unwrap())
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Unwrap returns the sentinel error for the status.
func (e *HostError) Unwrap() error { return statusError(e.Status) }

func statusError(st abi.Status) error {
	switch st {
	case abi.StatusNotGranted:
		return ErrNotGranted
	case abi.StatusNotFound:
		return ErrNotFound
	case abi.StatusInvalidArgument:
		return ErrInvalidArgument
	case abi.StatusTooLarge:
		return ErrTooLarge
	case abi.StatusFailed:
		return ErrFailed
	case abi.StatusCancelled:
		return ErrCancelled
	}
	return fmt.Errorf("%w %d", ErrUnknownStatus, int64(st))
}

// result turns a host function's return value into its pending result (a
// fresh slice the caller owns) or a *HostError carrying the pending message.
func result(fn string, ret int64) ([]byte, error) {
	if ret < 0 {
		return nil, &HostError{Func: fn, Status: abi.Status(ret), Message: string(readPending(0))}
	}
	return readPending(int(ret)), nil
}

// readPending copies the pending result out with result_read: first into a
// buffer of the announced size, then, if the host reports a different
// length, once more at that length.
func readPending(size int) []byte {
	buf := make([]byte, size)
	for range 2 {
		n := int(hostcall.ResultRead(buf))
		if n <= len(buf) {
			return buf[:n]
		}
		buf = make([]byte, n)
	}
	return buf
}

func checkCtx(fn string, ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sdk: %s: %w: %w", fn, ErrCancelled, err)
	}
	return nil
}

// HTTPRequest is a request made through the host with HTTPDo.
type HTTPRequest struct {
	Method string // GET if empty
	URL    string // absolute http or https URL to a granted host
	Header map[string][]string
	Body   []byte
	// Timeout bounds the request; 0 uses the host's default. The call's own
	// deadline always applies.
	Timeout time.Duration
}

// HTTPResponse is the host's answer. A non-2xx status is not an error.
type HTTPResponse struct {
	Status int
	Header map[string][]string
	Body   []byte
}

// HTTPDo performs req through the host, which allows only the hosts the
// plugin declared with AllowHTTP and the operator granted.
func HTTPDo(ctx context.Context, req HTTPRequest) (HTTPResponse, error) {
	if err := checkCtx(abi.FuncHTTPRequest, ctx); err != nil {
		return HTTPResponse{}, err
	}
	method := req.Method
	if method == "" {
		method = "GET"
	}
	in, err := json.Marshal(abi.HTTPRequest{
		Method: method, URL: req.URL, Headers: req.Header, Body: req.Body,
		TimeoutMS: req.Timeout.Milliseconds(),
	})
	if err != nil {
		return HTTPResponse{}, fmt.Errorf("sdk: http_request: encode: %w", err)
	}
	out, err := result(abi.FuncHTTPRequest, hostcall.HTTPRequest(in))
	if err != nil {
		return HTTPResponse{}, err
	}
	var resp abi.HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return HTTPResponse{}, fmt.Errorf("sdk: http_request: decode host response: %w", err)
	}
	return HTTPResponse{Status: resp.Status, Header: resp.Headers, Body: resp.Body}, nil
}

// HTTPGet is HTTPDo with a GET of url.
func HTTPGet(ctx context.Context, url string) (HTTPResponse, error) {
	return HTTPDo(ctx, HTTPRequest{Method: "GET", URL: url})
}

// KVGet reads key from the plugin's key/value namespace; a missing key is
// ErrNotFound.
func KVGet(ctx context.Context, key string) ([]byte, error) {
	if err := checkCtx(abi.FuncKVGet, ctx); err != nil {
		return nil, err
	}
	return result(abi.FuncKVGet, hostcall.KVGet([]byte(key)))
}

// KVPut stores value under key; ttl 0 means no expiry.
func KVPut(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkCtx(abi.FuncKVPut, ctx); err != nil {
		return err
	}
	if ttl < 0 {
		return &HostError{Func: abi.FuncKVPut, Status: abi.StatusInvalidArgument, Message: "negative ttl"}
	}
	// Round up: a ttl is never shortened by the millisecond resolution.
	ms := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	_, err := result(abi.FuncKVPut, hostcall.KVPut([]byte(key), value, ms))
	return err
}

// KVDelete deletes key; deleting a missing key is not an error.
func KVDelete(ctx context.Context, key string) error {
	if err := checkCtx(abi.FuncKVDelete, ctx); err != nil {
		return err
	}
	_, err := result(abi.FuncKVDelete, hostcall.KVDelete([]byte(key)))
	return err
}

// KVList lists up to limit keys (0: the host's default) that start with
// prefix and sort after after, in order.
func KVList(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	if err := checkCtx(abi.FuncKVList, ctx); err != nil {
		return nil, err
	}
	in, err := json.Marshal(abi.KVListRequest{Prefix: prefix, After: after, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("sdk: kv_list: encode: %w", err)
	}
	out, err := result(abi.FuncKVList, hostcall.KVList(in))
	if err != nil {
		return nil, err
	}
	var resp abi.KVListResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("sdk: kv_list: decode host response: %w", err)
	}
	return resp.Keys, nil
}

// Config returns the config value name, which the plugin declared with
// UseConfig and the operator set.
func Config(ctx context.Context, name string) (string, error) {
	if err := checkCtx(abi.FuncConfigGet, ctx); err != nil {
		return "", err
	}
	out, err := result(abi.FuncConfigGet, hostcall.ConfigGet([]byte(name)))
	return string(out), err
}

// Secret returns the secret name, which the plugin declared with UseSecrets
// and the operator granted. Never log or return it.
func Secret(ctx context.Context, name string) (string, error) {
	if err := checkCtx(abi.FuncSecretGet, ctx); err != nil {
		return "", err
	}
	out, err := result(abi.FuncSecretGet, hostcall.SecretGet([]byte(name)))
	return string(out), err
}

// Progress reports that done of total units of the running call are
// finished, with an optional message; total <= 0 means unknown. It needs
// UseProgress.
func Progress(ctx context.Context, done, total float64, msg string) error {
	if err := checkCtx(abi.FuncProgress, ctx); err != nil {
		return err
	}
	_, err := result(abi.FuncProgress, hostcall.Progress(done, total, []byte(msg)))
	return err
}

// Tools returns every tool on the server, sorted by name, with whether the
// running call's caller may use it and, if not, what is missing. It needs
// UseTools.
func Tools(ctx context.Context) ([]abi.ToolAccess, error) {
	if err := checkCtx(abi.FuncTools, ctx); err != nil {
		return nil, err
	}
	out, err := result(abi.FuncTools, hostcall.Tools())
	if err != nil {
		return nil, err
	}
	var resp abi.ToolsResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("sdk: tools: decode host response: %w", err)
	}
	return resp.Tools, nil
}
