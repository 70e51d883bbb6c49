package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/sdk"
	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/sdktest"
)

// A tiny but real JPEG header and PNG are enough: the plugin sniffs, it
// does not decode upstream images.
var (
	fakeJPEG = append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), bytes.Repeat([]byte{7}, 64)...)
	fakePNG  = append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{9}, 64)...)
)

const (
	testAccount = "0123456789abcdef0123456789abcdef"
	testToken   = "cf-token-test"
	testKey     = "sk-test"
)

// request is what a fake saw.
type request struct {
	Method, Path, Auth, ContentType string
	Body                            map[string]any
}

// fake answers the plugin's requests with reply and records them.
type fake struct {
	t     *testing.T
	reply func(w http.ResponseWriter, r *http.Request)
	seen  []request
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rq := request{Method: r.Method, Path: r.URL.Host + r.URL.Path, Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type")}
	if err := json.Unmarshal(body, &rq.Body); err != nil {
		f.t.Errorf("request body %q is not JSON: %v", body, err)
	}
	f.seen = append(f.seen, rq)
	f.reply(w, r)
}

func jsonReply(status int, header map[string]string, body any) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if s, ok := body.(string); ok {
			io.WriteString(w, s)
			return
		}
		json.NewEncoder(w).Encode(body)
	}
}

func cfOK(img []byte) any {
	return map[string]any{"result": map[string]any{"image": base64.StdEncoding.EncodeToString(img)}, "success": true, "errors": []any{}, "messages": []any{}}
}

func cfFail(code int, msg string) any {
	return map[string]any{"result": nil, "success": false, "errors": []any{map[string]any{"code": code, "message": msg}}, "messages": []any{}}
}

func openAIOK(img []byte) any {
	return map[string]any{"created": 1700000000, "data": []any{map[string]any{"b64_json": base64.StdEncoding.EncodeToString(img), "revised_prompt": "x"}}}
}

func openAIFail(msg string) any {
	return map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "code": nil}}
}

func blockUntilCancelled(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

var oversized = bytes.Repeat([]byte{0xff, 0xd8, 0xff}, (maxImageBytes/3)+1000)

type failureCase struct {
	name  string
	reply func(http.ResponseWriter, *http.Request)
	want  []string
}

const slowTimeout = "30s"

// timeoutFor is the request_timeout a failure case runs with.
func timeoutFor(c failureCase) string {
	if c.name == "timeout" {
		return "50ms"
	}
	return slowTimeout
}

// failureCases are the upstream failures every HTTP backend must explain.
// Every case runs with request_timeout = slowTimeout (so that a loaded
// machine does not turn a slow fake into a timeout) except "timeout", which
// runs with 50ms against a fake that never answers.
func failureCases(ok func([]byte) any, fail func(int, string) any) []failureCase {
	return []failureCase{
		{"401", jsonReply(401, nil, fail(10000, "Authentication error")), []string{"refused the credentials (HTTP 401)", "Authentication error"}},
		{"429 with retry-after seconds", jsonReply(429, map[string]string{"Retry-After": "30"}, fail(3040, "Capacity temporarily exceeded")), []string{"rate limiting", "HTTP 429", "try again in 30s", "Capacity temporarily exceeded"}},
		{"429 with retry-after date", jsonReply(429, map[string]string{"Retry-After": time.Now().Add(150 * time.Second).UTC().Format(time.RFC1123)}, fail(3040, "slow down")), []string{"HTTP 429", "try again in 2m", "slow down"}},
		{"429 without retry-after", jsonReply(429, nil, "{}"), []string{"HTTP 429", "try again later"}},
		{"500", jsonReply(500, nil, fail(3043, "Internal server error")), []string{"internal error (HTTP 500)", "Internal server error", "try again later"}},
		{"503 with an HTML body", jsonReply(503, nil, "<html>Service Unavailable</html>"), []string{"internal error (HTTP 503)"}},
		{"400", jsonReply(400, nil, fail(5006, "prompt too long")), []string{"rejected the request (HTTP 400)", "prompt too long"}},
		{"timeout", blockUntilCancelled, []string{"did not answer within 50ms"}},
		{"malformed body", jsonReply(200, nil, `{"result":`), []string{"not", "JSON"}},
		{"not base64", jsonReply(200, nil, ok(nil)), []string{"returned no image"}},
		{"not an image", jsonReply(200, nil, ok([]byte("hello, this is text"))), []string{"not a PNG, JPEG, WebP or GIF image"}},
		{"oversized image", jsonReply(200, nil, ok(oversized)), []string{"over the 5.0 MiB this tool returns"}},
	}
}

func TestWorkersAI(t *testing.T) {
	f := &fake{t: t, reply: jsonReply(200, nil, cfOK(fakeJPEG))}
	p := sdktest.New(t, sdktest.Options{
		Caller:  imageCaller,
		HTTP:    f,
		Config:  map[string]string{cfgBackend: backendWorkersAI},
		Secrets: map[string]string{secretCFAccount: testAccount, secretCFToken: testToken},
	})
	res := p.Call("generateImage", map[string]any{"prompt": "a cat", "steps": 8})
	if res.IsError || res.Error != nil || len(res.Content) != 1 {
		t.Fatalf("generateImage = %.300s", res.Raw)
	}
	if c := res.Content[0]; c.Type != abi.ContentImage || c.MimeType != "image/jpeg" || !bytes.Equal(c.Data, fakeJPEG) {
		t.Errorf("content = %s %s %d bytes, want the JPEG", c.Type, c.MimeType, len(c.Data))
	}
	want := request{Method: "POST", Path: "api.cloudflare.com/client/v4/accounts/" + testAccount + "/ai/run/@cf/black-forest-labs/flux-1-schnell",
		Auth: "Bearer " + testToken, ContentType: "application/json"}
	got := f.seen[0]
	if got.Method != want.Method || got.Path != want.Path || got.Auth != want.Auth || got.ContentType != want.ContentType ||
		got.Body["prompt"] != "a cat" || got.Body["steps"] != 8.0 || len(got.Body) != 2 {
		t.Errorf("request = %+v, want %+v with {prompt: a cat, steps: 8}", got, want)
	}
	prog := p.Progress()
	if len(prog) != 3 || !strings.Contains(prog[0].Message, "waiting for Workers AI") || prog[2].Done != prog[2].Total {
		t.Errorf("progress = %+v, want waiting, answered, received", prog)
	}
	for _, tt := range failureCases(cfOK, cfFail) {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{t: t, reply: tt.reply}
			p := sdktest.New(t, sdktest.Options{
				Caller:  imageCaller,
				HTTP:    f,
				Config:  map[string]string{cfgBackend: backendWorkersAI, cfgRequestTimeout: timeoutFor(tt)},
				Secrets: map[string]string{secretCFAccount: testAccount, secretCFToken: testToken},
			})
			checkToolError(t, p.Call("generateImage", map[string]any{"prompt": "a cat"}), tt.want)
		})
	}
}

func TestWorkersAIConfiguration(t *testing.T) {
	tests := []struct {
		name    string
		secrets map[string]string
		config  map[string]string
		want    string
	}{
		{"no account", map[string]string{secretCFToken: testToken}, nil, "needs the secret cloudflare_account_id"},
		{"no token", map[string]string{secretCFAccount: testAccount}, nil, "needs the secret cloudflare_api_token"},
		{"account with a path", map[string]string{secretCFAccount: "../x", secretCFToken: testToken}, nil, "not a Cloudflare account ID"},
		{"bad timeout", map[string]string{secretCFAccount: testAccount, secretCFToken: testToken}, map[string]string{cfgRequestTimeout: "soon"}, "not a positive duration"},
		{"unknown backend", nil, map[string]string{cfgBackend: "dalle"}, `backend "dalle", which this plugin does not know`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := map[string]string{cfgBackend: backendWorkersAI}
			for k, v := range tt.config {
				cfg[k] = v
			}
			f := &fake{t: t, reply: jsonReply(200, nil, cfOK(fakeJPEG))}
			p := sdktest.New(t, sdktest.Options{Caller: imageCaller, HTTP: f, Config: cfg, Secrets: tt.secrets})
			checkToolError(t, p.Call("generateImage", map[string]any{"prompt": "a cat"}), []string{tt.want})
			if len(f.seen) != 0 {
				t.Errorf("the plugin sent %d requests despite the bad configuration", len(f.seen))
			}
		})
	}
}

func TestOpenAI(t *testing.T) {
	tests := []struct {
		name     string
		config   map[string]string
		secrets  map[string]string
		wantPath string
		wantAuth string
		wantBody map[string]any
	}{
		{
			name: "defaults", config: map[string]string{cfgBackend: backendOpenAI}, secrets: map[string]string{secretOpenAIKey: testKey},
			wantPath: "api.openai.com/v1/images/generations", wantAuth: "Bearer " + testKey,
			wantBody: map[string]any{"model": "dall-e-3", "prompt": "a cat", "n": 1.0, "size": "1024x1024", "response_format": "b64_json"},
		},
		{
			name: "local server without a key",
			config: map[string]string{cfgBackend: backendOpenAI, cfgOpenAIBaseURL: "http://localhost:8080/v1/", cfgOpenAIModel: "sd-turbo",
				cfgOpenAISize: "512x512", cfgRequestTimeout: slowTimeout},
			wantPath: "localhost:8080/v1/images/generations",
			wantBody: map[string]any{"model": "sd-turbo", "prompt": "a cat", "n": 1.0, "size": "512x512", "response_format": "b64_json"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{t: t, reply: jsonReply(200, nil, openAIOK(fakePNG))}
			p := sdktest.New(t, sdktest.Options{Caller: imageCaller, HTTP: f, Config: tt.config, Secrets: tt.secrets})
			res := p.Call("generateImage", map[string]any{"prompt": "a cat", "steps": 6})
			if res.IsError || res.Error != nil || len(res.Content) != 1 {
				t.Fatalf("generateImage = %.300s", res.Raw)
			}
			if c := res.Content[0]; c.MimeType != "image/png" || !bytes.Equal(c.Data, fakePNG) {
				t.Errorf("content = %s %d bytes, want the PNG", c.MimeType, len(c.Data))
			}
			got := f.seen[0]
			gotBody, _ := json.Marshal(got.Body)
			wantBody, _ := json.Marshal(tt.wantBody)
			if got.Method != "POST" || got.Path != tt.wantPath || got.Auth != tt.wantAuth || !bytes.Equal(gotBody, wantBody) {
				t.Errorf("request = %+v %s, want POST %s auth %q %s", got, gotBody, tt.wantPath, tt.wantAuth, wantBody)
			}
		})
	}
	fail := func(_ int, msg string) any { return openAIFail(msg) }
	for _, tt := range failureCases(openAIOK, fail) {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{t: t, reply: tt.reply}
			p := sdktest.New(t, sdktest.Options{Caller: imageCaller, HTTP: f,
				Config:  map[string]string{cfgBackend: backendOpenAI, cfgRequestTimeout: timeoutFor(tt)},
				Secrets: map[string]string{secretOpenAIKey: testKey}})
			checkToolError(t, p.Call("generateImage", map[string]any{"prompt": "a cat"}), tt.want)
		})
	}
	f := &fake{t: t}
	t.Run("ungranted host", func(t *testing.T) {
		p := sdktest.New(t, sdktest.Options{Caller: imageCaller, HTTP: f,
			Config: map[string]string{cfgBackend: backendOpenAI, cfgOpenAIBaseURL: "https://images.example.net/v1"}})
		checkToolError(t, p.Call("generateImage", map[string]any{"prompt": "a cat"}), []string{"not reachable from this plugin", "grant its host"})
	})
	t.Run("bad base url", func(t *testing.T) {
		p := sdktest.New(t, sdktest.Options{Caller: imageCaller, HTTP: f,
			Config: map[string]string{cfgBackend: backendOpenAI, cfgOpenAIBaseURL: "ftp://x"}})
		checkToolError(t, p.Call("generateImage", map[string]any{"prompt": "a cat"}), []string{"not an http(s) base URL"})
	})
}

func checkToolError(t *testing.T, res sdktest.Result, want []string) {
	t.Helper()
	if !res.IsError || res.Error != nil {
		t.Fatalf("result = %.300s, want a tool error", res.Raw)
	}
	text := res.Text()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("tool error %q does not contain %q", text, w)
		}
	}
	for _, secret := range []string{testToken, testKey} {
		if strings.Contains(text, secret) {
			t.Errorf("tool error %q reveals a secret", text)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30", 30 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"Thu, 26 Nov 2026 06:01:30 GMT", 90 * time.Second, true},
		{"Thu, 26 Nov 2026 05:59:00 GMT", 0, true},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %t; want %v, %t", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", 400)
	if got := clip(long); len(got) > maxDetail+len("…") || !strings.HasSuffix(got, "…") || !utf8Valid(got) {
		t.Errorf("clip of 800 bytes = %d bytes %q", len(got), got)
	}
	if got := clip("a\n\tb  c"); got != "a b c" {
		t.Errorf("clip = %q, want one line", got)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// FuzzParseWorkersAI feeds arbitrary bodies and statuses to the Workers AI
// parser: it must never panic, and must return either an image within the
// limit with a known type or an error.
func FuzzParseWorkersAI(f *testing.F) {
	ok, _ := json.Marshal(cfOK(fakeJPEG))
	bad, _ := json.Marshal(cfFail(10000, "Authentication error"))
	f.Add(200, ok)
	f.Add(200, bad)
	f.Add(401, bad)
	f.Add(200, []byte(`{"result":{"image":"!!"},"success":true}`))
	f.Add(200, []byte(`{"result":null,"success":true}`))
	f.Add(500, []byte(`not json`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		checkParsed(t, parseWorkersAI, status, body)
	})
}

// FuzzParseOpenAI is FuzzParseWorkersAI for the images API parser.
func FuzzParseOpenAI(f *testing.F) {
	ok, _ := json.Marshal(openAIOK(fakePNG))
	bad, _ := json.Marshal(openAIFail("billing hard limit reached"))
	f.Add(200, ok)
	f.Add(400, bad)
	f.Add(200, []byte(`{"data":[]}`))
	f.Add(200, []byte(`{"data":[{"b64_json":"iVBORw0KGgo="}]}`))
	f.Add(429, []byte(`{"error":null}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		checkParsed(t, parseOpenAI, status, body)
	})
}

// FuzzRetryAfter checks that no header value panics or gives a negative
// delay.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"30", "Thu, 26 Nov 2026 06:01:30 GMT", "Thursday, 26-Nov-26 06:01:30 GMT", "", "-5", "1e9"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d, ok := retryAfter(v, now); ok && d < 0 {
			t.Errorf("retryAfter(%q) = %v, negative", v, d)
		}
	})
}

func checkParsed(t *testing.T, parse func(sdk.HTTPResponse) ([]byte, string, error), status int, body []byte) {
	img, mime, err := parse(sdk.HTTPResponse{Status: status, Body: body})
	if err != nil {
		if img != nil || mime != "" {
			t.Errorf("error %v with an image", err)
		}
		return
	}
	if status < 200 || status > 299 {
		t.Errorf("status %d accepted", status)
	}
	if len(img) == 0 || len(img) > maxImageBytes || mime != sniffImage(img) || mime == "" {
		t.Errorf("accepted %d bytes of %q", len(img), mime)
	}
}
