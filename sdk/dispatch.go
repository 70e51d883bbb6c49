package sdk

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"

	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/internal/bridge"
	"github.com/toolgate/toolgate/sdk/internal/jsonx"
)

// Identity is the caller of a tool as AuthKit vouched for it: user,
// organization, role, permissions and MCP client. It never holds a token.
// Treat it as read-only: its slices may be shared between calls.
type Identity = abi.Caller

// callCtx is a handler's context: the background context plus the call's
// caller and id, in one allocation.
type callCtx struct {
	context.Context
	caller Identity
	// The call id is kept in a fixed buffer and turned into a string only
	// when asked for; longer ids go to idLong.
	id     [48]byte
	idLen  int
	idLong string
}

type callKey struct{}

// Value returns the call itself for callKey and defers everything else.
func (c *callCtx) Value(key any) any {
	if key == (callKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func (c *callCtx) setID(raw []byte, escaped bool) {
	c.idLen, c.idLong = 0, ""
	if !escaped && len(raw) <= len(c.id) {
		c.idLen = copy(c.id[:], raw)
		return
	}
	c.idLong = jsonx.Unquote(raw, escaped)
}

func (c *callCtx) callID() string {
	if c.idLong != "" {
		return c.idLong
	}
	return string(c.id[:c.idLen])
}

// Caller returns the identity of whoever called the running tool. Outside a
// tool call it returns the zero Identity.
func Caller(ctx context.Context) Identity {
	if c, ok := ctx.Value(callKey{}).(*callCtx); ok {
		return c.caller
	}
	return Identity{}
}

// CallID returns the host's identifier of the running call, for logs.
func CallID(ctx context.Context) string {
	if c, ok := ctx.Value(callKey{}).(*callCtx); ok {
		return c.callID()
	}
	return ""
}

// callInput is the parsed envelope.
type callInput struct {
	tool []byte
	// t is the tool, when it was named before the arguments (the host
	// sends "tool" first, so the arguments are decoded in the same pass).
	t *tool
	// args are the decoded arguments (when t is set) or argsErr why they
	// did not decode.
	args    any
	prev    *tool // the tool args belong to
	argsErr error
	decoded bool
	// rawArgs are the arguments when they came before the tool's name.
	rawArgs []byte
	caller  Identity
	// callID is the raw call id (aliasing the input); idEscaped reports
	// whether it has escapes.
	callID    []byte
	idEscaped bool
}

// callerCache remembers the last caller so that a run of calls from one
// user parses the identity once. The input buffer is reused by the host, so
// the raw bytes are copied.
var callerCache struct {
	mu     sync.Mutex
	raw    []byte
	caller Identity
}

// parseCallInput parses an abi.CallInput strictly enough to trust: the
// whole input must be one valid JSON object; unknown members are skipped
// (a newer host may send more).
func parseCallInput(in []byte) (callInput, error) {
	var ci callInput
	s := jsonx.New(in)
	empty, err := s.ObjectStart()
	if err != nil {
		return ci, err
	}
	haveTool := false
	for !empty {
		raw, esc, err := s.Key()
		if err != nil {
			return ci, err
		}
		key := raw
		if esc {
			key = jsonx.AppendUnquote(nil, raw)
		}
		switch string(key) {
		case "tool":
			if s.Peek() != '"' {
				return ci, errors.New("tool: want a string")
			}
			v, vesc, err := s.String()
			if err != nil {
				return ci, err
			}
			if vesc {
				v = jsonx.AppendUnquote(nil, v)
			}
			ci.tool, haveTool = v, true
			ci.t = lookupTool(v)
			// A repeated "tool" re-decodes the arguments for the new tool.
			ci.releaseArgs()
			ci.argsErr, ci.decoded = nil, false
		case "arguments":
			if err := ci.readArguments(&s); err != nil {
				return ci, err
			}
		case "caller":
			if err := ci.readCaller(&s); err != nil {
				return ci, fmt.Errorf("caller: %w", err)
			}
		case "call_id":
			if s.Null() {
				break
			}
			if s.Peek() != '"' {
				return ci, errors.New("call_id: want a string")
			}
			v, vesc, err := s.String()
			if err != nil {
				return ci, err
			}
			ci.callID, ci.idEscaped = v, vesc
		default:
			if _, err := s.SkipValue(); err != nil {
				return ci, err
			}
		}
		more, err := s.ObjectNext()
		if err != nil {
			return ci, err
		}
		empty = !more
	}
	if err := s.End(); err != nil {
		return ci, err
	}
	if !haveTool {
		return ci, errors.New("no tool named")
	}
	if ci.t != nil && !ci.decoded {
		raw := ci.rawArgs
		if raw == nil {
			raw = []byte("{}")
		}
		var end int
		ci.args, end, ci.argsErr = ci.t.decode(raw, 0)
		ci.prev = ci.t
		if ci.argsErr == nil {
			as := jsonx.Scanner{Data: raw, Pos: end}
			ci.argsErr = as.End()
		}
		ci.decoded = true
	}
	return ci, nil
}

// readArguments decodes the arguments in place when the tool is known, or
// keeps their bytes for later. A value that is valid JSON but does not fit
// the tool's type is an argument error, not a malformed envelope.
func (ci *callInput) readArguments(s *jsonx.Scanner) error {
	ci.releaseArgs()
	if ci.t == nil {
		v, err := s.SkipValue()
		if err != nil {
			return err
		}
		ci.rawArgs, ci.argsErr, ci.decoded = v, nil, false
		return nil
	}
	s.SkipSpace()
	start := s.Pos
	ci.args, s.Pos, ci.argsErr = ci.t.decode(s.Data, start)
	ci.prev, ci.decoded = ci.t, true
	if ci.argsErr != nil {
		// Re-read the value for its syntax, so that the envelope parse
		// goes on (or fails for malformed JSON).
		s.Pos = start
		if _, err := s.SkipValue(); err != nil {
			return err
		}
	}
	ci.rawArgs = s.Data[start:s.Pos]
	return nil
}

// releaseArgs gives decoded arguments back to their tool.
func (ci *callInput) releaseArgs() {
	if ci.args != nil {
		ci.prev.release(ci.args)
		ci.args = nil
	}
}

// readCaller reads the caller, reusing the last one when its bytes repeat:
// a complete JSON value is never a proper prefix of another, so a prefix
// match is an exact match.
func (ci *callInput) readCaller(s *jsonx.Scanner) error {
	s.SkipSpace()
	callerCache.mu.Lock()
	defer callerCache.mu.Unlock()
	if len(callerCache.raw) > 0 && jsonx.HasPrefix(s.Data[s.Pos:], callerCache.raw) {
		s.Pos += len(callerCache.raw)
		ci.caller = callerCache.caller
		return nil
	}
	raw, err := s.SkipValue()
	if err != nil {
		return err
	}
	var id Identity
	if err := decodeLenient(raw, &id); err != nil {
		return err
	}
	callerCache.raw = append(callerCache.raw[:0], raw...)
	callerCache.caller = id
	ci.caller = id
	return nil
}

var (
	callerCodecOnce sync.Once
	callerCodec     *codec
	callerCodecErr  error
)

// decodeLenient decodes raw into the Identity, skipping unknown members.
func decodeLenient(raw []byte, id *Identity) error {
	callerCodecOnce.Do(func() { callerCodec, callerCodecErr = codecFor(reflect.TypeFor[Identity]()) })
	if callerCodecErr != nil {
		return callerCodecErr
	}
	s := jsonx.New(raw)
	if s.Null() {
		return nil
	}
	empty, err := s.ObjectStart()
	if err != nil {
		return err
	}
	v := reflect.ValueOf(id).Elem()
	for !empty {
		k, esc, err := s.Key()
		if err != nil {
			return err
		}
		i, ok := callerCodec.byName[jsonx.Unquote(k, esc)]
		if !ok {
			if _, err := s.SkipValue(); err != nil {
				return err
			}
		} else {
			f := &callerCodec.fields[i]
			if err := f.codec.decode(&s, fieldByIndex(v, f.index)); err != nil {
				return atPath(err, f.name)
			}
		}
		more, err := s.ObjectNext()
		if err != nil {
			return err
		}
		empty = !more
	}
	return nil
}

// dispatcher holds the reused output buffers of the call path. The exports
// use one package-level dispatcher; sdktest makes its own.
type dispatcher struct {
	out     []byte
	scratch []byte
	last    lastCodec
}

// maxKeptBuffer is the largest buffer kept between calls; a larger one is
// dropped after the next call so that one big result does not pin memory.
const maxKeptBuffer = 1 << 20

// handle runs one call and returns the CallResult JSON. The returned slice
// is d's buffer: valid until the next handle.
func (d *dispatcher) handle(in []byte) []byte {
	if cap(d.out) > maxKeptBuffer {
		d.out = nil
	}
	if cap(d.scratch) > maxKeptBuffer {
		d.scratch = nil
	}
	d.out = d.call(d.out[:0], in)
	return d.out
}

func (d *dispatcher) call(dst, in []byte) (out []byte) {
	ci, err := parseCallInput(in)
	if err != nil {
		ci.releaseArgs()
		return appendError(dst, abi.ErrInvalidArguments, "malformed call input: "+err.Error())
	}
	if ci.t == nil {
		return appendError(dst, abi.ErrUnknownTool, fmt.Sprintf("no tool named %q in this plugin", ci.tool))
	}
	if ci.argsErr != nil {
		return appendError(dst, abi.ErrInvalidArguments, ci.argsErr.Error())
	}
	defer func() {
		if p := recover(); p != nil {
			msg := fmt.Sprintf("tool %q panicked: %v", ci.tool, p)
			logPanic(msg, debug.Stack())
			out = appendError(dst, abi.ErrInternal, msg)
		}
	}()
	ctx := &callCtx{Context: context.Background(), caller: ci.caller}
	ctx.setID(ci.callID, ci.idEscaped)
	res, err := ci.t.invoke(ctx, ci.args)
	if err != nil {
		return appendToolError(dst, err.Error())
	}
	out, d.scratch, err = encodeResult(dst, d.scratch, res, &d.last)
	if err != nil {
		return appendError(dst, abi.ErrInternal, fmt.Sprintf("tool %q: %v", ci.tool, err))
	}
	return out
}

func appendToolError(dst []byte, msg string) []byte {
	dst = append(dst, `{"content":[{"type":"text","text":`...)
	dst = jsonx.AppendString(dst, msg)
	return append(dst, `}],"is_error":true}`...)
}

func init() {
	bridge.NewDispatcher = func() func([]byte) []byte {
		d := new(dispatcher)
		return d.handle
	}
}
