package main

import (
	"encoding/json"
	"testing"

	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/sdktest"
)

func TestAdd(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{})
	tests := []struct {
		name string
		args any
		text string
		sum  float64
	}{
		{"integers", map[string]any{"a": 1, "b": 2}, "3", 3},
		{"fractions", map[string]any{"a": 0.25, "b": 0.5}, "0.75", 0.75},
		{"negative", map[string]any{"a": -5, "b": 2.5}, "-2.5", -2.5},
		{"large", `{"a":1e21,"b":1}`, "1e+21", 1e21},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := p.Call("add", tt.args)
			if res.Error != nil || res.IsError {
				t.Fatalf("add(%v) failed: %s", tt.args, res.Raw)
			}
			if got := res.Text(); got != tt.text {
				t.Errorf("add(%v) text = %q, want %q", tt.args, got, tt.text)
			}
			var out AddResult
			if err := json.Unmarshal(res.Structured, &out); err != nil || out.Sum != tt.sum {
				t.Errorf("add(%v) structured = %s (%v), want sum %v", tt.args, res.Structured, err, tt.sum)
			}
		})
	}
}

func TestAddRejectsBadArguments(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{})
	for _, args := range []string{`{"a":1}`, `{"a":"1","b":2}`, `{"a":1,"b":2,"c":3}`, `[1,2]`} {
		res := p.Call("add", args)
		if res.Error == nil || res.Error.Code != abi.ErrInvalidArguments {
			t.Errorf("add(%s) = %s, want an invalid_arguments error", args, res.Raw)
		}
	}
}

func TestManifest(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{})
	m := p.Manifest()
	if m.Name != "add" || m.ABI != abi.Version || len(m.Tools) != 1 {
		t.Fatalf("manifest = %+v, want plugin add with one tool", m)
	}
	tool := m.Tools[0]
	var schema struct {
		Type       string
		Properties map[string]struct{ Type string }
		Required   []string
	}
	if err := json.Unmarshal(tool.InputSchema, &schema); err != nil {
		t.Fatal(err)
	}
	if schema.Type != "object" || schema.Properties["a"].Type != "number" || schema.Properties["b"].Type != "number" || len(schema.Required) != 2 {
		t.Errorf("input schema = %s, want an object requiring numbers a and b", tool.InputSchema)
	}
	if len(tool.OutputSchema) == 0 || len(tool.Permissions) != 0 {
		t.Errorf("tool = %+v, want an output schema and no permissions", tool)
	}
	if m.Capabilities.KV || m.Capabilities.HTTP != nil || m.Capabilities.Progress {
		t.Errorf("capabilities = %+v, want none", m.Capabilities)
	}
}
