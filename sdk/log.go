package sdk

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/internal/hostcall"
)

// Logger returns a structured logger whose records go to the host's log,
// attributed to this plugin and the running call. Log lines longer than
// abi.MaxLogLineBytes are truncated by the host. Never log secrets.
func Logger() *slog.Logger { return logger }

var logger = slog.New(newHostHandler())

func newHostHandler() *hostHandler {
	buf := new(bytes.Buffer)
	return &hostHandler{mu: new(sync.Mutex), buf: buf, text: slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})}
}

// LogDebug, LogInfo, LogWarn and LogError log msg with key/value pairs
// through Logger.
func LogDebug(ctx context.Context, msg string, args ...any) {
	logger.DebugContext(ctx, msg, args...)
}

// LogInfo logs at info level; see LogDebug.
func LogInfo(ctx context.Context, msg string, args ...any) { logger.InfoContext(ctx, msg, args...) }

// LogWarn logs at warning level; see LogDebug.
func LogWarn(ctx context.Context, msg string, args ...any) { logger.WarnContext(ctx, msg, args...) }

// LogError logs at error level; see LogDebug.
func LogError(ctx context.Context, msg string, args ...any) { logger.ErrorContext(ctx, msg, args...) }

// hostHandler formats records as logfmt text (without time and level, which
// the host adds) and hands each to the host's log function.
type hostHandler struct {
	mu   *sync.Mutex
	buf  *bytes.Buffer
	text slog.Handler
}

func (h *hostHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *hostHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := CallID(ctx); id != "" {
		r.AddAttrs(slog.String("call_id", id))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if err := h.text.Handle(ctx, r); err != nil {
		return fmt.Errorf("sdk: format log record: %w", err)
	}
	line := bytes.TrimSuffix(h.buf.Bytes(), []byte("\n"))
	hostcall.Log(hostLevel(r.Level), line)
	return nil
}

func (h *hostHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &hostHandler{mu: h.mu, buf: h.buf, text: h.text.WithAttrs(attrs)}
}

func (h *hostHandler) WithGroup(name string) slog.Handler {
	return &hostHandler{mu: h.mu, buf: h.buf, text: h.text.WithGroup(name)}
}

func hostLevel(l slog.Level) int32 {
	switch {
	case l < slog.LevelInfo:
		return abi.LogDebug
	case l < slog.LevelWarn:
		return abi.LogInfo
	case l < slog.LevelError:
		return abi.LogWarn
	}
	return abi.LogError
}

// logPanic reports a recovered handler panic with its stack to the host log.
func logPanic(msg string, stack []byte) {
	hostcall.Log(abi.LogError, append([]byte(msg+"\n"), stack...))
}
