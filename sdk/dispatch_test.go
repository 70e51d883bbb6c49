package sdk

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/sdk/abi"
)

const testCaller = `{"user_id":"user_1","role":"admin","permissions":["image_generation"]}`

func callJSON(t *testing.T, in string) abi.CallResult {
	t.Helper()
	var d dispatcher
	out := d.handle([]byte(in))
	var res abi.CallResult
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("result %s is not a CallResult: %v", out, err)
	}
	return res
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the exact CallResult JSON
	}{
		{"add", `{"tool":"test_add","arguments":{"a":1,"b":2},"caller":` + testCaller + `}`,
			`{"content":[{"type":"text","text":"3"}],"structured":{"sum":3}}`},
		{"arguments before tool", `{"arguments":{"a":1.5,"b":2},"caller":` + testCaller + `,"tool":"test_add"}`,
			`{"content":[{"type":"text","text":"3.5"}],"structured":{"sum":3.5}}`},
		{"whitespace everywhere", " { \"tool\" : \"test_add\" , \"arguments\" : { \"a\" : -1 , \"b\" : 1e2 } } ",
			`{"content":[{"type":"text","text":"99"}],"structured":{"sum":99}}`},
		{"unknown tool", `{"tool":"nope","arguments":{}}`,
			`{"error":{"code":"unknown_tool","message":"no tool named \"nope\" in this plugin"}}`},
		{"unknown tool with odd arguments", `{"tool":"nope","arguments":[1,2]}`,
			`{"error":{"code":"unknown_tool","message":"no tool named \"nope\" in this plugin"}}`},
		{"wrong type", `{"tool":"test_add","arguments":{"a":"1","b":2}}`,
			`{"error":{"code":"invalid_arguments","message":"a: want a number"}}`},
		{"missing required", `{"tool":"test_add","arguments":{"a":1}}`,
			`{"error":{"code":"invalid_arguments","message":"missing required field \"b\""}}`},
		{"unknown member", `{"tool":"test_add","arguments":{"a":1,"b":2,"c":3}}`,
			`{"error":{"code":"invalid_arguments","message":"unknown field \"c\""}}`},
		{"arguments not an object", `{"tool":"test_add","arguments":[1,2]}`,
			`{"error":{"code":"invalid_arguments","message":"want an object"}}`},
		{"null arguments are empty", `{"tool":"test_fail","arguments":null}`,
			`{"content":[{"type":"text","text":"the printer is on fire"}],"is_error":true}`},
		{"absent arguments are empty", `{"tool":"test_fail"}`,
			`{"content":[{"type":"text","text":"the printer is on fire"}],"is_error":true}`},
		{"below minimum", `{"tool":"test_echo","arguments":{"text":"x","steps":2}}`,
			`{"error":{"code":"invalid_arguments","message":"steps: 2 is less than the minimum 4"}}`},
		{"not in enum", `{"tool":"test_echo","arguments":{"text":"x","mode":"medium"}}`,
			`{"error":{"code":"invalid_arguments","message":"mode: medium is not one of [fast slow]"}}`},
		{"default applied", `{"tool":"test_echo","arguments":{"text":"x"}}`,
			`{"content":[{"type":"text","text":"{\"text\":\"x\",\"steps\":4}"}],"structured":{"text":"x","steps":4}}`},
		{"integral float for int", `{"tool":"test_echo","arguments":{"text":"x","steps":5.0,"tags":["a","b"]}}`,
			`{"content":[{"type":"text","text":"{\"text\":\"x\",\"steps\":5,\"tags\":[\"a\",\"b\"]}"}],"structured":{"text":"x","steps":5,"tags":["a","b"]}}`},
		{"fractional for int", `{"tool":"test_echo","arguments":{"text":"x","steps":5.5}}`,
			`{"error":{"code":"invalid_arguments","message":"steps: want an integer, got 5.5"}}`},
		{"escaped strings", `{"tool":"test_echo","arguments":{"text":"a\"b\\c\u00e9\ud83d\ude00<>"}}`,
			`{"content":[{"type":"text","text":"{\"text\":\"a\\\"b\\\\cé😀\\u003c\\u003e\",\"steps\":4}"}],"structured":{"text":"a\"b\\cé😀\u003c\u003e","steps":4}}`},
		{"handler error", `{"tool":"test_fail","arguments":{}}`,
			`{"content":[{"type":"text","text":"the printer is on fire"}],"is_error":true}`},
		{"explicit tool error", `{"tool":"test_tool_error","arguments":{}}`,
			`{"content":[{"type":"text","text":"no such city \"Atlantis\""}],"is_error":true}`},
		{"panic", `{"tool":"test_panic","arguments":{}}`,
			`{"error":{"code":"internal","message":"tool \"test_panic\" panicked: boom"}}`},
		{"image and text", `{"tool":"test_image","arguments":{}}`,
			`{"content":[{"type":"image","data":"iVBORw==","mime_type":"image/png"},{"type":"text","text":"a tiny picture"}]}`},
		{"structured must be an object", `{"tool":"test_bad_structured","arguments":{}}`,
			`{"error":{"code":"internal","message":"tool \"test_bad_structured\": structured content of type int is not a JSON object"}}`},
		{"caller and call id", `{"tool":"test_whoami","arguments":{},"caller":` + testCaller + `,"call_id":"call-7"}`,
			`{"content":[{"type":"text","text":"user_1 admin [image_generation] call-7"}]}`},
		{"unknown envelope members are skipped", `{"tool":"test_whoami","future":{"x":[1,{"y":null}]},"caller":{"user_id":"u2","permissions":[],"tenant":"t"}}`,
			`{"content":[{"type":"text","text":"u2  [] "}]}`},
		{"not json", `not json`,
			`{"error":{"code":"invalid_arguments","message":"malformed call input: invalid json at offset 0: unexpected 'n', want '{'"}}`},
		{"trailing data", `{"tool":"test_fail"} {}`,
			`{"error":{"code":"invalid_arguments","message":"malformed call input: invalid json at offset 21: unexpected data after the value"}}`},
		{"no tool", `{"arguments":{}}`,
			`{"error":{"code":"invalid_arguments","message":"malformed call input: no tool named"}}`},
		{"malformed arguments", `{"tool":"test_add","arguments":{"a":1,"b":}}`,
			`{"error":{"code":"invalid_arguments","message":"malformed call input: invalid json at offset 42: invalid number"}}`},
		{"tool not a string", `{"tool":7}`,
			`{"error":{"code":"invalid_arguments","message":"malformed call input: tool: want a string"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d dispatcher
			got := string(d.handle([]byte(tt.in)))
			if got != tt.want {
				t.Errorf("handle(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			callJSON(t, tt.in) // and it decodes as a CallResult
		})
	}
}

// TestDispatchReuse checks that reused buffers and the reused arguments
// value do not leak one call into the next.
func TestDispatchReuse(t *testing.T) {
	var d dispatcher
	first := string(d.handle([]byte(`{"tool":"test_echo","arguments":{"text":"first","tags":["a"],"mode":"fast"}}`)))
	second := string(d.handle([]byte(`{"tool":"test_echo","arguments":{"text":"second"}}`)))
	want := `{"content":[{"type":"text","text":"{\"text\":\"second\",\"steps\":4}"}],"structured":{"text":"second","steps":4}}`
	if second != want {
		t.Errorf("second call after %s\n got %s\nwant %s", first, second, want)
	}
}

// TestCallerCache checks that a changed caller is not served from the
// cache, and that a prefix of the cached caller is not mistaken for it.
func TestCallerCache(t *testing.T) {
	in := func(caller string) string {
		return `{"tool":"test_whoami","caller":` + caller + `,"call_id":"c"}`
	}
	for _, tt := range []struct{ caller, want string }{
		{`{"user_id":"alice","role":"admin","permissions":["p"]}`, "alice admin [p] c"},
		{`{"user_id":"alice","role":"admin","permissions":["p"]}`, "alice admin [p] c"},
		{`{"user_id":"bob","role":"member","permissions":[]}`, "bob member [] c"},
		{`{"user_id":"alice","role":"admin","permissions":["p"]}`, "alice admin [p] c"},
		{`{"user_id":"alice","role":"admin","permissions":["p","q"]}`, "alice admin [p q] c"},
	} {
		res := callJSON(t, in(tt.caller))
		if len(res.Content) != 1 || res.Content[0].Text != tt.want {
			t.Errorf("caller %s: got %+v, want text %q", tt.caller, res, tt.want)
		}
	}
}

func TestLongCallID(t *testing.T) {
	id := strings.Repeat("x", 100)
	res := callJSON(t, `{"tool":"test_whoami","caller":{"user_id":"u","permissions":[]},"call_id":"`+id+`"}`)
	if got := res.Content[0].Text; !strings.HasSuffix(got, " "+id) {
		t.Errorf("text %q does not end with the call id", got)
	}
	res = callJSON(t, `{"tool":"test_whoami","caller":{"user_id":"u","permissions":[]},"call_id":"a\u0062c"}`)
	if got := res.Content[0].Text; !strings.HasSuffix(got, " abc") {
		t.Errorf("text %q does not end with the unescaped call id abc", got)
	}
}

// TestConcurrentDispatchers hammers the shared state of the call path (the
// spare arguments value, the caller cache, the tool table) from several
// dispatchers at once, as natively run tests may; run it with -race.
func TestConcurrentDispatchers(t *testing.T) {
	const workers, calls = 4, 200
	errs := make(chan string, workers)
	for w := range workers {
		go func() {
			var d dispatcher
			for i := range calls {
				text := strings.Repeat("x", w+1) + strings.Repeat("y", i%3)
				in := `{"tool":"test_echo","arguments":{"text":"` + text + `"},"caller":{"user_id":"u` + strings.Repeat("1", w) + `","permissions":[]}}`
				want := `{"content":[{"type":"text","text":"{\"text\":\"` + text + `\",\"steps\":4}"}],"structured":{"text":"` + text + `","steps":4}}`
				if got := string(d.handle([]byte(in))); got != want {
					errs <- "got " + got + ", want " + want
					return
				}
			}
			errs <- ""
		}()
	}
	for range workers {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}
