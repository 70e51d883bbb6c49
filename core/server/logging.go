package server

import (
	"io"
	"log/slog"
	"os"

	"github.com/toolgate/toolgate/core/config"
)

// NewLogger builds the process logger from log.level and log.format:
// human-readable text for "text", one JSON object a line for "json", and
// for "auto" text when out is a terminal and JSON otherwise.
func NewLogger(out io.Writer, cfg config.LogConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: ParseLevel(cfg.Level)}
	format := cfg.Format
	if format == "auto" || format == "" {
		format = "json"
		if isTerminal(out) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(out, opts))
	}
	return slog.New(slog.NewJSONHandler(out, opts))
}

// ParseLevel maps a log.level value to its slog level; anything
// unrecognised (which config validation refuses) means info.
func ParseLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
