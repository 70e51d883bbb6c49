package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/sdk"
	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/sdktest"
)

type fetchArgs struct {
	URL string `json:"url"`
}

type noArgs struct{}

func init() {
	sdk.Plugin("harness", "1.2.3", "Exercises every host capability.",
		sdk.AllowHTTP("api.example.com"), sdk.UseKV(), sdk.UseConfig("region"), sdk.UseSecrets("token"), sdk.UseProgress(), sdk.UseTools())
	sdk.Tool("fetch", "GETs a URL.", func(ctx context.Context, a fetchArgs) (sdk.Result, error) {
		resp, err := sdk.HTTPDo(ctx, sdk.HTTPRequest{URL: a.URL, Header: map[string][]string{"X-Test": {"1"}}})
		if err != nil {
			return sdk.Result{}, err
		}
		return sdk.Text(fmt.Sprintf("%d %s", resp.Status, resp.Body)), nil
	})
	sdk.Tool("count", "Counts calls in KV.", func(ctx context.Context, _ noArgs) (sdk.Result, error) {
		n := 0
		v, err := sdk.KVGet(ctx, "count")
		switch {
		case errors.Is(err, sdk.ErrNotFound):
		case err != nil:
			return sdk.Result{}, err
		default:
			fmt.Sscan(string(v), &n)
		}
		n++
		if err := sdk.KVPut(ctx, "count", []byte(fmt.Sprint(n)), time.Hour); err != nil {
			return sdk.Result{}, err
		}
		keys, err := sdk.KVList(ctx, "", "", 0)
		if err != nil {
			return sdk.Result{}, err
		}
		return sdk.Text(fmt.Sprintf("%d %v", n, keys)), nil
	})
	sdk.Tool("settings", "Reads config and a secret.", func(ctx context.Context, _ noArgs) (sdk.Result, error) {
		region, err := sdk.Config(ctx, "region")
		if err != nil {
			return sdk.Result{}, err
		}
		token, err := sdk.Secret(ctx, "token")
		if err != nil {
			return sdk.Result{}, err
		}
		if _, err := sdk.Config(ctx, "undeclared"); !errors.Is(err, sdk.ErrNotGranted) {
			return sdk.Result{}, fmt.Errorf("undeclared config: %v", err)
		}
		return sdk.Text(region + " " + strings.Repeat("*", len(token))), nil
	})
	sdk.Tool("work", "Reports progress and logs.", func(ctx context.Context, _ noArgs) (sdk.Result, error) {
		for i := range 3 {
			if err := sdk.Progress(ctx, float64(i+1), 3, fmt.Sprintf("step %d", i+1)); err != nil {
				return sdk.Result{}, err
			}
		}
		sdk.LogInfo(ctx, "done", "steps", 3)
		return sdk.Text("worked for " + sdk.Caller(ctx).UserID), nil
	}, sdk.RequirePermissions("work"))
}

func init() {
	sdk.Tool("access", "Lists the tools the caller may use.", func(ctx context.Context, _ noArgs) (sdk.Result, error) {
		tools, err := sdk.Tools(ctx)
		if err != nil {
			return sdk.Result{}, err
		}
		var parts []string
		for _, t := range tools {
			parts = append(parts, fmt.Sprintf("%s/%s:%t:%s", t.Plugin, t.Name, t.Allowed, t.Missing))
		}
		return sdk.Text(fmt.Sprintf("%d %s", len(tools), strings.Join(parts, " "))), nil
	})
}

func TestTools(t *testing.T) {
	tests := []struct {
		name   string
		opts   sdktest.Options
		want   string
		status abi.Status
	}{
		{"nil list", sdktest.Options{}, "0 ", abi.StatusOK},
		{"two tools", sdktest.Options{Tools: []abi.ToolAccess{
			{Name: "add", Plugin: "add", Allowed: true},
			{Name: "generateImage", Plugin: "generateimage", Missing: "permission image_generation"},
		}}, "2 add/add:true: generateimage/generateImage:false:permission image_generation", abi.StatusOK},
		{"not granted", sdktest.Options{Grants: &abi.Capabilities{}, Tools: []abi.ToolAccess{{Name: "add"}}}, "", abi.StatusNotGranted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sdktest.New(t, tt.opts)
			res := p.Call("access", noArgs{})
			calls := p.HostCalls()
			if len(calls) != 1 || calls[0].Func != abi.FuncTools || calls[0].Status != tt.status {
				t.Fatalf("host calls = %+v, want one tools call with status %d", calls, tt.status)
			}
			if tt.status != abi.StatusOK {
				if !res.IsError || !strings.Contains(res.Text(), "not granted") {
					t.Errorf("access = %s, want a not-granted tool error", res.Raw)
				}
				return
			}
			if res.IsError || res.Text() != tt.want {
				t.Errorf("access = %s, want text %q", res.Raw, tt.want)
			}
		})
	}
}

func TestHTTP(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.Path, r.Header.Get("X-Test"), body)
	})
	p := sdktest.New(t, sdktest.Options{HTTP: handler})
	if got := p.Call("fetch", fetchArgs{URL: "https://api.example.com/v1"}).Text(); got != "200 GET /v1 1 " {
		t.Errorf("fetch = %q", got)
	}
	res := p.Call("fetch", fetchArgs{URL: "https://evil.example.net/"})
	if !res.IsError || !strings.Contains(res.Text(), "not granted") {
		t.Errorf("fetch of an ungranted host = %s, want a not-granted tool error", res.Raw)
	}
	calls := p.HostCalls()
	if len(calls) != 2 || calls[0].Status != abi.StatusOK || calls[1].Status != abi.StatusNotGranted {
		t.Errorf("host calls = %+v", calls)
	}
	denied := sdktest.New(t, sdktest.Options{HTTP: handler, Grants: &abi.Capabilities{}})
	if res := denied.Call("fetch", fetchArgs{URL: "https://api.example.com/v1"}); !res.IsError {
		t.Errorf("fetch without the grant = %s, want a tool error", res.Raw)
	}
}

func init() {
	sdk.Tool("fetchWithin", "GETs a URL with a 20 ms timeout.", func(ctx context.Context, a fetchArgs) (sdk.Result, error) {
		resp, err := sdk.HTTPDo(ctx, sdk.HTTPRequest{URL: a.URL, Timeout: 20 * time.Millisecond})
		if err != nil {
			return sdk.Result{}, err
		}
		return sdk.Text(fmt.Sprintf("%d", resp.Status)), nil
	})
}

func TestHTTPTimeout(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done()
			return
		}
		if _, ok := r.Context().Deadline(); !ok {
			t.Error("request with a timeout has no deadline")
		}
		w.WriteHeader(http.StatusNoContent)
	})
	p := sdktest.New(t, sdktest.Options{HTTP: handler})
	if got := p.Call("fetchWithin", fetchArgs{URL: "https://api.example.com/fast"}); got.Text() != "204" {
		t.Errorf("fast = %s, want 204", got.Raw)
	}
	res := p.Call("fetchWithin", fetchArgs{URL: "https://api.example.com/slow"})
	if !res.IsError || !strings.Contains(res.Text(), "deadline exceeded") {
		t.Errorf("slow = %s, want a failed tool error naming the deadline", res.Raw)
	}
	if calls := p.HostCalls(); len(calls) != 2 || calls[1].Status != abi.StatusFailed {
		t.Errorf("host calls = %+v, want the second failed", calls)
	}
}

func TestKV(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{KV: map[string][]byte{"other": []byte("x")}})
	for _, want := range []string{"1 [count other]", "2 [count other]"} {
		if got := p.Call("count", noArgs{}).Text(); got != want {
			t.Errorf("count = %q, want %q", got, want)
		}
	}
	if got := string(p.KV()["count"]); got != "2" {
		t.Errorf("KV count = %q, want 2", got)
	}
	if got := p.KVTTL("count"); got != time.Hour {
		t.Errorf("KV ttl = %v, want 1h", got)
	}
}

func TestConfigAndSecrets(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{Config: map[string]string{"region": "eu"}, Secrets: map[string]string{"token": "s3cr3t"}})
	if got := p.Call("settings", noArgs{}); got.Text() != "eu ******" {
		t.Errorf("settings = %s", got.Raw)
	}
	unset := sdktest.New(t, sdktest.Options{})
	if got := unset.Call("settings", noArgs{}); !got.IsError || !strings.Contains(got.Text(), "not found") {
		t.Errorf("settings without values = %s, want a not-found tool error", got.Raw)
	}
}

func TestPermissionsProgressAndLogs(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{})
	if res := p.Call("work", noArgs{}); len(res.Denied) != 1 || res.Denied[0] != "work" {
		t.Errorf("work without the permission: denied = %v, want [work]", res.Denied)
	}
	res := p.CallAs(abi.Caller{UserID: "alice", Permissions: []string{"work"}}, "work", noArgs{})
	if res.Text() != "worked for alice" {
		t.Errorf("work = %s", res.Raw)
	}
	if got := p.Progress(); len(got) != 3 || got[2] != (sdktest.ProgressReport{Done: 3, Total: 3, Message: "step 3"}) {
		t.Errorf("progress = %+v", got)
	}
	if got := p.Logs(); len(got) != 1 || got[0].Level != abi.LogInfo || got[0].Text != "msg=done steps=3 call_id=call_test" {
		t.Errorf("logs = %+v", got)
	}
}

func TestManifestAndErrors(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{})
	m := p.Manifest()
	if m.Name != "harness" || len(m.Tools) != 6 || len(m.Capabilities.Secrets) != 1 || !m.Capabilities.Tools {
		t.Errorf("manifest = %+v", m)
	}
	if _, ok := p.Tool("work"); !ok {
		t.Error("Tool(work) not found")
	}
	if res := p.Call("missing", noArgs{}); res.Error == nil || res.Error.Code != abi.ErrUnknownTool {
		t.Errorf("missing tool = %s, want unknown_tool", res.Raw)
	}
	if res := p.CallRaw([]byte(`{"tool":"fetch","arguments":{"url":1}}`)); res.Error == nil || res.Error.Code != abi.ErrInvalidArguments {
		t.Errorf("bad arguments = %s, want invalid_arguments", res.Raw)
	}
}
