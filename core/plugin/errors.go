package plugin

import (
	"errors"
	"fmt"
)

// ErrorKind sorts plugin call failures. The MCP layer turns every kind into
// a tool error (IsError with the message as text); none of them is a failure
// of the server itself.
type ErrorKind string

// Error kinds.
const (
	// ErrKindUnknownTool: no loaded plugin serves that tool name.
	ErrKindUnknownTool ErrorKind = "unknown_tool"
	// ErrKindBadInput: the arguments are not valid JSON.
	ErrKindBadInput ErrorKind = "bad_input"
	// ErrKindInputTooLarge: the call input exceeds abi.MaxInputBytes.
	ErrKindInputTooLarge ErrorKind = "input_too_large"
	// ErrKindTimeout: the call ran past its wall-time limit.
	ErrKindTimeout ErrorKind = "timeout"
	// ErrKindCancelled: the caller cancelled the request.
	ErrKindCancelled ErrorKind = "cancelled"
	// ErrKindMemory: the call exceeded the plugin's or tool's memory limit.
	ErrKindMemory ErrorKind = "memory_limit"
	// ErrKindTrap: the guest trapped, panicked or exited.
	ErrKindTrap ErrorKind = "trap"
	// ErrKindOutputTooLarge: the result exceeded the output limit.
	ErrKindOutputTooLarge ErrorKind = "output_too_large"
	// ErrKindBadOutput: the result is not a valid abi.CallResult.
	ErrKindBadOutput ErrorKind = "bad_output"
	// ErrKindGuest: the guest reported an abi.Error; Code holds its code.
	ErrKindGuest ErrorKind = "guest_error"
	// ErrKindBusy: every instance of the plugin was in use and the call
	// could not wait (the queue was full, or Config.QueueTimeout passed).
	// The client may try again.
	ErrKindBusy ErrorKind = "busy"
	// ErrKindUnavailable: the host is closed or the plugin could not start
	// a fresh instance.
	ErrKindUnavailable ErrorKind = "unavailable"
)

// Error is the error Host.Call returns when a plugin call fails. Its message
// is meant for the client: it names the plugin and tool and says what went
// wrong, without host internals or secrets.
type Error struct {
	Kind   ErrorKind
	Plugin string // empty for ErrKindUnknownTool
	Tool   string
	// Code is the guest's error code for ErrKindGuest (abi.ErrUnknownTool, ...).
	Code string
	// Message is the readable reason.
	Message string
	// Err is the underlying cause, if any (not part of Error()).
	Err error
}

func (e *Error) Error() string {
	if e.Plugin == "" {
		return fmt.Sprintf("tool %q: %s", e.Tool, e.Message)
	}
	return fmt.Sprintf("plugin %q tool %q: %s", e.Plugin, e.Tool, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a plugin call error, or "" if err is not one.
func KindOf(err error) ErrorKind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return ""
}
