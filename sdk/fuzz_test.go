package sdk

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDispatch runs arbitrary bytes through toolgate_call's path: it must
// never panic, and must always answer with a valid CallResult.
func FuzzDispatch(f *testing.F) {
	for _, s := range []string{
		`{"tool":"test_add","arguments":{"a":1,"b":2},"caller":{"user_id":"u","permissions":[]},"call_id":"c"}`,
		`{"arguments":{"a":1,"b":2},"tool":"test_add"}`,
		`{"tool":"test_echo","arguments":{"text":"x\u00e9","steps":5,"tags":["a"],"mode":"fast"}}`,
		`{"tool":"test_whoami","caller":{"user_id":"u","permissions":["a"],"x":{}},"call_id":"\u0041"}`,
		`{"tool":"test_add","tool":"test_echo","arguments":{"text":"x"}}`,
		`{"tool":"test_image"}`, `{"tool":"nope"}`, `{}`, `[]`, `null`, `{"tool":"test_add","arguments":{"a":1e400}}`,
	} {
		f.Add([]byte(s))
	}
	var d dispatcher
	f.Fuzz(func(t *testing.T, in []byte) {
		out := d.handle(in)
		var res struct {
			Content    []json.RawMessage `json:"content"`
			Structured json.RawMessage   `json:"structured"`
			IsError    bool              `json:"is_error"`
			Error      *struct{ Code, Message string }
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("handle(%q) = %q: not JSON: %v", in, out, err)
		}
		if res.Error == nil && res.Content == nil {
			t.Fatalf("handle(%q) = %q: neither content nor error", in, out)
		}
	})
}

// FuzzParseCallInput checks the envelope parser against encoding/json: what
// it accepts is valid JSON, and the tool and call id agree.
func FuzzParseCallInput(f *testing.F) {
	for _, s := range []string{
		`{"tool":"test_add","arguments":{"a":1,"b":2},"caller":{"user_id":"u","permissions":[]},"call_id":"c"}`,
		`{"tool":"t\u00e9\"","call_id":"x\ny"}`,
		` {"tool" : "a" , "extra" : [1, {"b": null}], "call_id" : null } `,
		`{"tool":"a","caller":null}`, `{"tool":1}`, `{"tool":"a"`, `{"tool":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ci, err := parseCallInput(in)
		if ci.args != nil {
			ci.prev.release(ci.args)
		}
		if err != nil {
			return
		}
		if !json.Valid(in) {
			t.Fatalf("parseCallInput accepted invalid JSON %q", in)
		}
		var ref map[string]json.RawMessage
		if err := json.Unmarshal(in, &ref); err != nil {
			t.Fatalf("accepted %q, which is not a JSON object: %v", in, err)
		}
		var tool string
		if err := json.Unmarshal(ref["tool"], &tool); err != nil || tool != string(ci.tool) {
			// encoding/json's map keeps the last duplicate, as we do.
			t.Fatalf("tool = %q, encoding/json says %q (%v)", ci.tool, tool, err)
		}
	})
}

type fuzzArgs struct {
	S  string            `json:"s,omitempty"`
	N  int16             `json:"n,omitempty"`
	F  float64           `json:"f,omitempty"`
	B  bool              `json:"b,omitempty"`
	L  []string          `json:"l,omitempty"`
	M  map[string]uint8  `json:"m,omitempty"`
	P  *schemaInner      `json:"p,omitempty"`
	A  any               `json:"a,omitempty"`
	BS []byte            `json:"bs,omitempty"`
	MM map[string][]bool `json:"mm,omitempty"`
}

// FuzzDecodeArgs checks the arguments decoder against encoding/json: a
// value both accept decodes to the same Go value.
func FuzzDecodeArgs(f *testing.F) {
	for _, s := range []string{
		`{"s":"x","n":-3,"f":1.5,"b":true,"l":["a"],"m":{"k":7},"p":{"x":1},"a":[1,"x"],"bs":"AQI=","mm":{"x":[true]}}`,
		`{"s":"\u00e9\ud83d\ude00","f":1e-7,"n":32767}`, `{"p":null,"l":null}`, `{}`, `{"n":1.0}`,
	} {
		f.Add([]byte(s))
	}
	c, err := codecFor(reflect.TypeFor[fuzzArgs]())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var got fuzzArgs
		s := jsonxNew(in)
		if err := c.decode(&s, reflect.ValueOf(&got).Elem()); err != nil {
			return
		}
		if s.End() != nil {
			return
		}
		if !json.Valid(in) {
			t.Fatalf("decoder accepted invalid JSON %q", in)
		}
		var want fuzzArgs
		if err := json.Unmarshal(in, &want); err != nil {
			// We accept integral floats (1.0) for integers; encoding/json
			// does not. Anything else it rejects we must reject too.
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decode(%q)\n got %#v\nwant %#v", in, got, want)
		}
	})
}
