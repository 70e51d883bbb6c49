package sdk

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

type schemaInner struct {
	X int `json:"x"`
}

type schemaEmbedded struct {
	E string `json:"e" jsonschema:"from the embedded struct"`
}

type schemaAll struct {
	schemaEmbedded
	Name    string          `json:"name" jsonschema:"who"`
	Count   int             `json:"count,omitempty" schema:"minimum=1,maximum=10,default=3"`
	Ratio   float32         `json:"ratio" schema:"exclusiveMinimum=0,exclusiveMaximum=1"`
	Size    uint8           `json:"size"`
	On      bool            `json:"on"`
	Color   string          `json:"color" schema:"enum=red|green,title=Colour"`
	Code    string          `json:"code" schema:"minLength=2,maxLength=4,pattern=^[a-z]{2,4}$"`
	URL     string          `json:"url" schema:"format=uri"`
	Raw     []byte          `json:"raw,omitempty"`
	Tags    []string        `json:"tags" schema:"minItems=1,maxItems=3"`
	Labels  map[string]int  `json:"labels,omitempty"`
	Inner   schemaInner     `json:"inner"`
	Opt     *schemaInner    `json:"opt"`
	List    []schemaInner   `json:"list,omitempty"`
	When    time.Time       `json:"when"`
	Any     any             `json:"any,omitempty"`
	Extra   json.RawMessage `json:"extra,omitempty"`
	Skipped string          `json:"-"`
	//lint:ignore U1000 an unexported field, which the schema must leave out.
	internal string
	Untagged string
	Nested   map[string][]bool `json:"nested,omitempty"`
}

func TestSchema(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"empty", reflect.TypeFor[struct{}](), `{"type":"object","properties":{},"additionalProperties":false}`},
		{"add", reflect.TypeFor[testAddArgs](),
			`{"type":"object","properties":{"a":{"type":"number","description":"first addend"},"b":{"type":"number","description":"second addend"}},"required":["a","b"],"additionalProperties":false}`},
		{"everything", reflect.TypeFor[schemaAll](), `{"type":"object","properties":{` +
			`"e":{"type":"string","description":"from the embedded struct"},` +
			`"name":{"type":"string","description":"who"},` +
			`"count":{"type":"integer","minimum":1,"maximum":10,"default":3},` +
			`"ratio":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1},` +
			`"size":{"type":"integer","minimum":0},` +
			`"on":{"type":"boolean"},` +
			`"color":{"type":"string","title":"Colour","enum":["red","green"]},` +
			`"code":{"type":"string","minLength":2,"maxLength":4,"pattern":"^[a-z]{2,4}$"},` +
			`"url":{"type":"string","format":"uri"},` +
			`"raw":{"type":"string","contentEncoding":"base64"},` +
			`"tags":{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":3},` +
			`"labels":{"type":"object","additionalProperties":{"type":"integer"}},` +
			`"inner":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"],"additionalProperties":false},` +
			`"opt":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"],"additionalProperties":false},` +
			`"list":{"type":"array","items":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"],"additionalProperties":false}},` +
			`"when":{"type":"string","format":"date-time"},` +
			`"any":{},` +
			`"extra":{},` +
			`"Untagged":{"type":"string"},` +
			`"nested":{"type":"object","additionalProperties":{"type":"array","items":{"type":"boolean"}}}},` +
			`"required":["e","name","ratio","size","on","color","code","url","tags","inner","when","Untagged"],"additionalProperties":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := codecFor(tt.typ)
			if err != nil {
				t.Fatalf("codecFor(%s): %v", tt.typ, err)
			}
			got, err := schemaFor(c)
			if err != nil {
				t.Fatalf("schemaFor(%s): %v", tt.typ, err)
			}
			if string(got) != tt.want {
				t.Errorf("schema of %s\n got %s\nwant %s", tt.typ, got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("schema of %s is not valid JSON", tt.typ)
			}
		})
	}
}

type recursive struct {
	Next *recursive `json:"next"`
}

func TestSchemaRefused(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"channel", reflect.TypeFor[struct{ C chan int }](), "unsupported type chan int"},
		{"func", reflect.TypeFor[struct{ F func() }](), "unsupported type func()"},
		{"int keys", reflect.TypeFor[struct{ M map[int]string }](), "unsupported map key type int"},
		{"recursive", reflect.TypeFor[recursive](), "recursive type"},
		{"interface with methods", reflect.TypeFor[struct{ E error }](), "unsupported interface type error"},
		{"bad tag key", reflect.TypeFor[struct {
			X int `schema:"minimun=1"`
		}](), `unknown key "minimun"`},
		{"bad default", reflect.TypeFor[struct {
			X int `schema:"default=four"`
		}](), "want an integer"},
		{"default overflows", reflect.TypeFor[struct {
			X int8 `schema:"default=300"`
		}](), "want an integer fitting int8"},
		{"pointer default", reflect.TypeFor[struct {
			X *int `schema:"default=3"`
		}](), "a default needs a non-pointer field"},
		{"duplicate names", reflect.StructOf([]reflect.StructField{
			{Name: "A", Type: reflect.TypeFor[int](), Tag: `json:"x"`},
			{Name: "B", Type: reflect.TypeFor[int](), Tag: `json:"x"`},
		}), `duplicate JSON name "x"`},
		{"not key=value", reflect.TypeFor[struct {
			X int `schema:"minimum"`
		}](), "is not key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildCodec(tt.typ, map[reflect.Type]bool{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("buildCodec(%s) = %v, want an error containing %q", tt.typ, err, tt.want)
			}
		})
	}
}

type ctxT = context.Context

func TestAddToolRefused(t *testing.T) {
	noop := func(context2 ctxT, a testEmptyArgs) (Result, error) { return Result{}, nil }
	tests := []struct {
		name string
		tool string
		want string
	}{
		{"empty name", "", "tool name"},
		{"space in name", "bad name", "tool name"},
		{"too long", strings.Repeat("x", 129), "tool name"},
		{"duplicate", "test_add", "registered twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := addTool(tt.tool, "d", noop, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("addTool(%q) = %v, want an error containing %q", tt.tool, err, tt.want)
			}
		})
	}
	if err := addTool("not_struct", "d", func(ctxT, int) (Result, error) { return Result{}, nil }, nil); err == nil {
		t.Error("addTool with int arguments succeeded, want an error")
	}
	if err := addTool("bad_output", "d", noop, []ToolOption{Output[int]()}); err == nil {
		t.Error("addTool with Output[int] succeeded, want an error")
	}
	defer func() {
		if recover() == nil {
			t.Error("Tool with a bad name did not panic")
		}
	}()
	Tool("bad name", "d", noop)
}
