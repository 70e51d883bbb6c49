package config

import (
	"fmt"
	"strings"
)

// Error is a configuration problem. Its message is one line naming where
// the value came from, the key, the value and what is allowed, for
// example:
//
//	config: toolgate.toml: log.level = "loud": must be one of debug, info, warn, error
type Error struct {
	// Source names where the offending value came from: a file path,
	// "$NAME" for an environment variable, "flag -name" or "default".
	Source string
	// Key is the configuration key path, for example "log.level".
	Key string
	// Value is the offending value as written in the message (quoted
	// strings, secrets redacted); empty when the problem is a missing value.
	Value string
	// Problem says what is wrong and what is allowed.
	Problem string
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	b.WriteString(e.Key)
	if e.Value != "" {
		b.WriteString(" = ")
		b.WriteString(e.Value)
	}
	b.WriteString(": ")
	b.WriteString(e.Problem)
	return oneLine(b.String())
}

// UnknownKeyError is a key in the configuration file that toolgate does
// not know.
type UnknownKeyError struct {
	Source string // the file
	Key    string // the unknown key path
	// Suggestion is the closest known key, or "" when nothing is close.
	Suggestion string
}

// Error implements error.
func (e *UnknownKeyError) Error() string {
	msg := fmt.Sprintf("config: %s: unknown key %q", e.Source, e.Key)
	if e.Suggestion != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", e.Suggestion)
	}
	return oneLine(msg)
}

// oneLine guarantees a message stays on one line whatever a file or
// parser put into it.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
}

// suggest returns the candidate closest to key by edit distance, or "" if
// none is close enough to be a plausible typo.
func suggest(key string, candidates []string) string {
	best, bestDist := "", len(key)/3+2
	for _, c := range candidates {
		if d := editDistance(key, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
