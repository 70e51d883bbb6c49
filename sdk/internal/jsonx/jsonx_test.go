package jsonx

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestSkipValue(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{`{}`, true}, {`[]`, true}, {`"x"`, true}, {`0`, true}, {`-0.5e+10`, true}, {`true`, true},
		{`null`, true}, {` { "a" : [ 1 , { "b" : "\u00e9" } ] } `, true}, {`"` + strings.Repeat("abcdefgh", 9) + `"`, true},
		{`{`, false}, {`[1,]`, false}, {`{"a":}`, false}, {`01`, false}, {`1.`, false}, {`.5`, false},
		{`-`, false}, {`1e`, false}, {`"\x"`, false}, {`"\u12g4"`, false}, {"\"a\tb\"", false}, {`tru`, false},
		{`nul`, false}, {`"abc`, false}, {`{"a" 1}`, false}, {`{1:2}`, false}, {``, false},
		{strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2), false},
	}
	for _, tt := range tests {
		s := New([]byte(tt.in))
		_, err := s.SkipValue()
		if err == nil {
			err = s.End()
		}
		if (err == nil) != tt.ok {
			t.Errorf("SkipValue(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func FuzzSkipValue(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e-3,"x\u00e9\n",true,false,null]}`, `"abcdefghijklmnop\"q"`, `[{}]`, `1`, `-0`, `"\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := New(in)
		raw, err := s.SkipValue()
		if err == nil {
			err = s.End()
		}
		valid := json.Valid(in)
		if (err == nil) != valid {
			// Only nesting deeper than MaxDepth may be refused beyond what
			// encoding/json refuses.
			if !(valid && err != nil && strings.Contains(err.Error(), "nested too deeply")) {
				t.Fatalf("SkipValue(%q) error = %v, json.Valid = %v", in, err, valid)
			}
		}
		if err == nil && string(raw) != strings.Trim(string(in), " \t\r\n") {
			t.Fatalf("SkipValue(%q) = %q, want the trimmed input", in, raw)
		}
	})
}

func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"plain"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\ud83d\ude00\ud800x\udc00"`, "\"bad \xff utf8\"", `"` + strings.Repeat("é", 20) + `"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := New(in)
		if s.Peek() != '"' {
			return
		}
		raw, esc, err := s.String()
		var want string
		jerr := json.Unmarshal(in, &want)
		if err != nil || s.End() != nil {
			if jerr == nil {
				t.Fatalf("String(%q) failed (%v), encoding/json accepts it", in, err)
			}
			return
		}
		if jerr != nil {
			t.Fatalf("String(%q) accepted, encoding/json: %v", in, jerr)
		}
		if got := Unquote(raw, esc); got != want {
			t.Fatalf("Unquote(%q) = %q, want %q", in, got, want)
		}
	})
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain ascii text", "<a href=\"x\">&amp;</a>", "tab\tnewline\n\x00\x1f", "é😀\u2028\u2029", "bad \xff\xfe utf8", strings.Repeat("x", 33)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
		if got := AppendString(nil, []byte(s)); string(got) != string(want) {
			t.Fatalf("AppendString([]byte %q) = %s, want %s", s, got, want)
		}
	})
}

func TestAppendFloat(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 3.75, 0.1, 1e-6, 1e-7, 123456789, 1e15, 1e20, 1e21, 1.5e300, -2.5e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 999999999999999.9} {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendFloat(nil, f, 64)
		if err != nil || string(got) != string(want) {
			t.Errorf("AppendFloat(%v) = %s, %v; want %s", f, got, err, want)
		}
		want32, _ := json.Marshal(float32(f))
		if f32 := float32(f); !math.IsInf(float64(f32), 0) {
			got32, err := AppendFloat(nil, float64(f32), 32)
			if err != nil || string(got32) != string(want32) {
				t.Errorf("AppendFloat(float32 %v) = %s, %v; want %s", f32, got32, err, want32)
			}
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := AppendFloat(nil, f, 64); err == nil {
			t.Errorf("AppendFloat(%v) succeeded, want an error", f)
		}
	}
}

func TestEqualAndHasPrefix(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		eq   bool
	}{
		{"", "", true}, {"a", "a", true}, {"abcdefg", "abcdefg", true}, {"abcdefgh", "abcdefgh", true},
		{"abcdefghijk", "abcdefghijk", true}, {"abcdefghijk", "abcdefghijx", false}, {"abc", "abd", false},
		{"abc", "abcd", false}, {"xbcdefghijk", "abcdefghijk", false},
	} {
		if got := Equal([]byte(tt.a), tt.b); got != tt.eq {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.eq)
		}
		if got, want := HasPrefix([]byte(tt.a+"tail"), []byte(tt.b)), tt.eq; got != want {
			t.Errorf("HasPrefix(%q, %q) = %v, want %v", tt.a+"tail", tt.b, got, want)
		}
	}
}

func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float64{0.1, 0.25, 3.75, -12.5, 123456.789, 0.000001, 0.0000015, 1e-7, 99999999.999999, 1234567.1, 0.3, 2.675, 1.005, 1e14 + 0.5, math.Pi} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		want, err := json.Marshal(v)
		got, gerr := AppendFloat(nil, v, 64)
		if (err == nil) != (gerr == nil) {
			t.Fatalf("AppendFloat(%v) error %v, encoding/json error %v", v, gerr, err)
		}
		if err == nil && string(got) != string(want) {
			t.Fatalf("AppendFloat(%v) = %s, want %s", v, got, want)
		}
	})
}

// TestAppendShortDecimals compares the short-decimal path with
// encoding/json over decimals of every length it handles, including the
// largest mantissas it accepts, and their neighbouring floats.
func TestAppendShortDecimals(t *testing.T) {
	pow := []float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6}
	check := func(v float64) {
		want, err := json.Marshal(v)
		if err != nil {
			return
		}
		got, err := AppendFloat(nil, v, 64)
		if err != nil || string(got) != string(want) {
			t.Fatalf("AppendFloat(%v) = %s, %v; want %s", v, got, err, want)
		}
	}
	for k := 1; k <= 6; k++ {
		for _, base := range []int64{1, 7, 123, 99999, 1234567, 1 << 30, 1<<50 - 1, 1 << 50, 1<<53 - 1} {
			for d := int64(-300); d <= 300; d++ {
				v := float64(base+d) / pow[k]
				check(v)
				check(-v)
				check(math.Nextafter(v, math.Inf(1)))
				check(math.Nextafter(v, math.Inf(-1)))
			}
		}
	}
}
