package sdk

import (
	"encoding/base64"
	"fmt"
	"reflect"

	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/internal/jsonx"
)

// Result is what a tool returns: content blocks (text, images), optionally
// structured content, and whether it is a tool error. Build one with Text,
// Image, Structured or ErrorResult and add to it with the With methods; the
// zero Result is an empty success.
type Result struct {
	// first is the first content block, kept inline so that the common
	// one-block result does not allocate; content holds the rest.
	first   abi.Content
	content []abi.Content
	// structured is the value to encode as structured content.
	structured    any
	hasStructured bool
	// structuredText puts a text block holding the structured JSON first
	// (MCP asks tools to do so for clients that read only text).
	structuredText bool
	isError        bool
}

// Text returns a result with one text block.
func Text(text string) Result {
	return Result{first: abi.Content{Type: abi.ContentText, Text: text}}
}

// Image returns a result with one image block: data is the encoded image
// (PNG, JPEG, ...) and mimeType its media type, such as "image/png".
func Image(data []byte, mimeType string) Result {
	return Result{first: abi.Content{Type: abi.ContentImage, Data: data, MimeType: mimeType}}
}

// Structured returns a result whose structured content is v (encoded as
// JSON; it must encode as an object) and whose one text block is the same
// JSON, for clients that read only text.
func Structured(v any) Result {
	return Result{structured: v, hasStructured: true, structuredText: true}
}

// ErrorResult returns a tool error: a failure explained to the model in
// text, as a returned error is. Use it to add other content to the error.
func ErrorResult(text string) Result {
	return Result{first: abi.Content{Type: abi.ContentText, Text: text}, isError: true}
}

// Errorf is ErrorResult with fmt.Sprintf formatting.
func Errorf(format string, args ...any) Result {
	return ErrorResult(fmt.Sprintf(format, args...))
}

// WithText returns r with a text block appended.
func (r Result) WithText(text string) Result {
	return r.with(abi.Content{Type: abi.ContentText, Text: text})
}

// WithImage returns r with an image block appended.
func (r Result) WithImage(data []byte, mimeType string) Result {
	return r.with(abi.Content{Type: abi.ContentImage, Data: data, MimeType: mimeType})
}

func (r Result) with(c abi.Content) Result {
	if r.first.Type == "" {
		r.first = c
		return r
	}
	// Copy on append: results are values, and an earlier copy must not
	// see this block.
	r.content = append(r.content[:len(r.content):len(r.content)], c)
	return r
}

// WithStructured returns r with v as its structured content (encoded as
// JSON; it must encode as an object), without adding a text block.
func (r Result) WithStructured(v any) Result {
	r.structured, r.hasStructured = v, true
	return r
}

// Content returns r's content blocks. The text block Structured adds is not
// included; it is written when the result is encoded.
func (r Result) Content() []abi.Content {
	if r.first.Type == "" {
		return nil
	}
	return append([]abi.Content{r.first}, r.content...)
}

// IsError reports whether r is a tool error.
func (r Result) IsError() bool { return r.isError }

// StructuredValue returns the structured value and whether one is set.
func (r Result) StructuredValue() (any, bool) { return r.structured, r.hasStructured }

// encodeResult appends the CallResult JSON for r to dst. scratch is a reused
// buffer for the structured JSON; the grown scratch is returned. last caches
// the codec of the previous structured type (a tool returns one type).
func encodeResult(dst, scratch []byte, r Result, last *lastCodec) (out, scratchOut []byte, err error) {
	var structured []byte
	if r.hasStructured {
		v := reflect.ValueOf(r.structured)
		if !v.IsValid() {
			return dst, scratch, fmt.Errorf("structured content is nil")
		}
		c, err := last.get(v.Type())
		if err != nil {
			return dst, scratch, fmt.Errorf("structured content: %w", err)
		}
		scratch, err = c.encode(scratch[:0], v)
		if err != nil {
			return dst, scratch, fmt.Errorf("structured content: %w", err)
		}
		if len(scratch) == 0 || scratch[0] != '{' {
			return dst, scratch, fmt.Errorf("structured content of type %s is not a JSON object", v.Type())
		}
		structured = scratch
	}
	dst = append(dst, `{"content":[`...)
	n := 0
	block := func(c *abi.Content) {
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = appendContent(dst, c)
	}
	if r.structuredText && structured != nil {
		dst = append(dst, `{"type":"text","text":`...)
		dst = jsonx.AppendString(dst, structured)
		dst = append(dst, '}')
		n++
	}
	if r.first.Type != "" {
		block(&r.first)
	}
	for i := range r.content {
		block(&r.content[i])
	}
	dst = append(dst, ']')
	if structured != nil {
		dst = append(dst, `,"structured":`...)
		dst = append(dst, structured...)
	}
	if r.isError {
		dst = append(dst, `,"is_error":true`...)
	}
	return append(dst, '}'), scratch, nil
}

// lastCodec remembers one type's codec, so that the call path skips the
// shared cache's hashing (costly in WebAssembly) when the type repeats.
type lastCodec struct {
	typ reflect.Type
	c   *codec
}

func (l *lastCodec) get(t reflect.Type) (*codec, error) {
	if l != nil && l.typ == t {
		return l.c, nil
	}
	c, err := codecFor(t)
	if err == nil && l != nil {
		l.typ, l.c = t, c
	}
	return c, err
}

func appendContent(dst []byte, c *abi.Content) []byte {
	dst = append(dst, `{"type":`...)
	dst = jsonx.AppendString(dst, c.Type)
	if c.Text != "" {
		dst = append(dst, `,"text":`...)
		dst = jsonx.AppendString(dst, c.Text)
	}
	if len(c.Data) > 0 {
		dst = append(dst, `,"data":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, c.Data)
		dst = append(dst, '"')
	}
	if c.MimeType != "" {
		dst = append(dst, `,"mime_type":`...)
		dst = jsonx.AppendString(dst, c.MimeType)
	}
	if c.Type == abi.ContentText && c.Text == "" {
		dst = append(dst, `,"text":""`...)
	}
	return append(dst, '}')
}

// appendError appends a CallResult carrying an abi.Error.
func appendError(dst []byte, code, msg string) []byte {
	dst = append(dst, `{"error":{"code":`...)
	dst = jsonx.AppendString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = jsonx.AppendString(dst, msg)
	return append(dst, `}}`...)
}
