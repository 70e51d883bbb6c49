package sdk

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkDispatch measures the guest's whole call path natively: envelope
// parse, argument decode, handler, result encode, for the add tool's shape.
func BenchmarkDispatch(b *testing.B) {
	in := []byte(`{"tool":"test_add","arguments":{"a":1,"b":2},"caller":{"user_id":"user_1","email":"alice@example.com","organization_id":"org_1","role":"admin","permissions":["image_generation"],"client_id":"client_1"},"call_id":"c1"}`)
	var d dispatcher
	want := `{"content":[{"type":"text","text":"3"}],"structured":{"sum":3}}`
	if got := string(d.handle(in)); got != want {
		b.Fatalf("handle = %s, want %s", got, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		d.handle(in)
	}
}

var benchInput = []byte(`{"tool":"test_add","arguments":{"a":1,"b":2},"caller":{"user_id":"user_1","permissions":[]},"call_id":"c1"}`)

func BenchmarkParseCallInput(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ci, err := parseCallInput(benchInput)
		if err != nil {
			b.Fatal(err)
		}
		ci.releaseArgs()
	}
}

func BenchmarkEncodeResult(b *testing.B) {
	var dst, scratch []byte
	r := Text("3").WithStructured(testAddResult{Sum: 3})
	b.ReportAllocs()
	for b.Loop() {
		var err error
		dst, scratch, err = encodeResult(dst[:0], scratch, r, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandlerOnly(b *testing.B) {
	t := lookupTool([]byte("test_add"))
	args := &testAddArgs{A: 1, B: 2}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := t.invoke(ctx, args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormatFloat(b *testing.B) {
	for b.Loop() {
		_ = strconv.FormatFloat(3, 'g', -1, 64)
	}
}
