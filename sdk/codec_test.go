package sdk

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/sdk/internal/jsonx"
)

type codecSample struct {
	S    string            `json:"s"`
	I    int               `json:"i,omitempty"`
	I8   int8              `json:"i8,omitempty"`
	U16  uint16            `json:"u16,omitempty"`
	F32  float32           `json:"f32,omitempty"`
	F    float64           `json:"f,omitempty"`
	B    bool              `json:"b,omitempty"`
	P    *int              `json:"p,omitempty"`
	L    []int             `json:"l,omitempty"`
	M    map[string]string `json:"m,omitempty"`
	N    *schemaInner      `json:"n,omitempty"`
	Raw  []byte            `json:"raw,omitempty"`
	Any  any               `json:"any,omitempty"`
	RM   json.RawMessage   `json:"rm,omitempty"`
	When *time.Time        `json:"when,omitempty"`
}

func decodeSample(in string) (codecSample, error) {
	c, err := codecFor(reflect.TypeFor[codecSample]())
	if err != nil {
		return codecSample{}, err
	}
	var v codecSample
	s := jsonx.New([]byte(in))
	if err := c.decode(&s, reflect.ValueOf(&v).Elem()); err != nil {
		return v, err
	}
	return v, s.End()
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"s":""}`,
		`{"s":"héllo\n\u00e9\ud83d\ude00\/","i":-42,"i8":127,"u16":65535,"f32":1.5,"f":1e-7,"b":true}`,
		`{"s":"x","p":7,"l":[1,2,3],"m":{"a":"b","c":"d"},"n":{"x":1}}`,
		`{"s":"x","raw":"AAEC","any":{"k":[1,"two",null,true]},"rm":[1, 2]}`,
		`{"s":"x","when":"2026-11-26T05:00:00Z"}`,
		`{"s":"x","f":123456789012345678901234567890,"i":9007199254740993}`,
		`{"s":"x","f":0.1,"f32":0.1}`,
		`{"s":"x","f":-0.0000001234,"l":[]}`,
		`{"s":"x","p":null,"l":null,"m":null}`,
		`{"s":"\ud800 lone surrogate","m":{"\u00e9":"\ufffd"}}`,
		"{\"s\":\"bad utf8 \xff\xfe\"}",
	} {
		got, err := decodeSample(in)
		if err != nil {
			t.Errorf("decode(%s): %v", in, err)
			continue
		}
		var want codecSample
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("encoding/json rejects test input %s: %v", in, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Errorf("decode(%s)\n got %+v\nwant %+v", in, got, want)
		}
	}
}

// normalize makes RawMessage comparable (encoding/json keeps the bytes as
// they were; so do we) and is where future differences would be ironed out.
func normalize(v codecSample) codecSample { return v }

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"s":1}`, "s: want a string"},
		{`{"s":"x","i":"1"}`, "i: want a number"},
		{`{"s":"x","i8":128}`, "i8: want an integer that fits int8, got 128"},
		{`{"s":"x","u16":-1}`, "u16: want a non-negative integer"},
		{`{"s":"x","i":1.5}`, "i: want an integer, got 1.5"},
		{`{"s":"x","b":1}`, "b: want a boolean"},
		{`{"s":"x","l":[1,"2"]}`, "l.1: want a number"},
		{`{"s":"x","m":{"a":1}}`, "m.a: want a string"},
		{`{"s":"x","n":{}}`, `n: missing required field "x"`},
		{`{"s":"x","n":{"x":1,"y":2}}`, `n: unknown field "y"`},
		{`{"s":"x","raw":"!!"}`, "raw: invalid base64"},
		{`{"s":"x","f":1e999}`, "f: number 1e999 out of range"},
		{`{}`, `missing required field "s"`},
		{`{"s":null}`, `missing required field "s"`},
		{`{"s":"x",}`, "invalid json"},
		{`{"s":"x"`, "invalid json"},
		{`{"s":"x\u12"}`, "bad unicode escape"},
		{"{\"s\":\"x\ny\"}", "control character"},
		{`{"s":"x","when":"yesterday"}`, "when:"},
		{`{"s":"x"} x`, "unexpected data after the value"},
		{`[]`, "want an object"},
	}
	for _, tt := range tests {
		_, err := decodeSample(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("decode(%s) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestEncodeMatchesEncodingJSON(t *testing.T) {
	seven := 7
	when := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	for _, v := range []any{
		codecSample{S: "plain"},
		codecSample{S: "esc \"<>&\u2028\u2029\x01\n\t\\ é 😀", I: -3, I8: -128, U16: 9, F32: 0.1, F: 1e21, B: true},
		codecSample{S: "x", F: 1e-7, P: &seven, L: []int{1, 2}, M: map[string]string{"z": "1", "a": "2"}, N: &schemaInner{X: 5}},
		codecSample{S: "x", F: 123456.789, Raw: []byte{0, 1, 2, 255}, Any: map[string]any{"k": []any{1.5, "s", nil}}, RM: json.RawMessage(`{"a":1}`), When: &when},
		codecSample{S: "x", F: -0.000001, F32: 3.4e38},
		codecSample{S: "x", F: 1e15, I: math.MaxInt64},
		codecSample{S: "invalid utf8 \xff"},
		testAddResult{Sum: 3},
		map[string][]int{"b": {1}, "a": nil},
		[]schemaInner{{1}, {2}},
	} {
		c, err := codecFor(reflect.TypeOf(v))
		if err != nil {
			t.Fatalf("codecFor(%T): %v", v, err)
		}
		got, err := c.encode(nil, reflect.ValueOf(v))
		if err != nil {
			t.Errorf("encode(%+v): %v", v, err)
			continue
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if string(got) != string(want) {
			t.Errorf("encode(%T)\n got %s\nwant %s", v, got, want)
		}
	}
}

func TestEncodeRefusesNaN(t *testing.T) {
	c, err := codecFor(reflect.TypeFor[testAddResult]())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := c.encode(nil, reflect.ValueOf(testAddResult{Sum: f})); err == nil {
			t.Errorf("encode(%v) succeeded, want an error", f)
		}
	}
}

func TestFastNumbers(t *testing.T) {
	for _, lit := range []string{"0", "-0", "1", "0.1", "0.3", "123.456", "999999999999999", "0.000000000000001", "-12.5", "1.7976931348623157", "9007199254740993"} {
		want, err := json.Number(lit).Float64()
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := fastFloat([]byte(lit)); ok && got != want {
			t.Errorf("fastFloat(%s) = %v, want %v", lit, got, want)
		}
	}
	for _, lit := range []string{"1e5", "1.", "", "-", "1234567890123456"} {
		if _, ok := fastFloat([]byte(lit)); ok {
			t.Errorf("fastFloat(%q) took the fast path, want the fallback", lit)
		}
	}
}

func TestFastNumber(t *testing.T) {
	for _, tt := range []struct {
		in  string
		ok  bool
		end int
	}{
		{"1", true, 1}, {"-0", true, 2}, {"0.5,", true, 3}, {"123.456}", true, 7}, {"-12.5 ", true, 5},
		{"999999999999999", true, 15}, {"1.5.3", true, 3},
		{"01", false, 0}, {"-", false, 0}, {"1.", false, 0}, {".5", false, 0}, {"1e5", false, 0},
		{"2.5E-3", false, 0}, {"1234567890123456", false, 0}, {"x", false, 0}, {"", false, 0},
	} {
		f, end, ok := fastNumber([]byte(tt.in), 0)
		if ok != tt.ok || ok && end != tt.end {
			t.Errorf("fastNumber(%q) = %v, %d, %v; want ok=%v end=%d", tt.in, f, end, ok, tt.ok, tt.end)
			continue
		}
		if ok {
			want, err := strconv.ParseFloat(tt.in[:end], 64)
			if err != nil || f != want || math.Signbit(f) != math.Signbit(want) {
				t.Errorf("fastNumber(%q) = %v, want %v (%v)", tt.in, f, want, err)
			}
		}
	}
}
