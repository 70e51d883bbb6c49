package config

import "log/slog"

// Redacted is what a non-empty [Secret] prints instead of its value.
const Redacted = "<redacted>"

// Secret is a configuration value that must never appear in logs or
// output: an API key, a cookie key, an encryption key. Every way of
// formatting it (fmt verbs, slog, encoding/json, TOML) prints [Redacted]
// instead of the value; read the value with [Secret.Reveal] exactly where
// it is used.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s != "" }

// String returns [Redacted], or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// LogValue keeps log/slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps encoders (JSON, TOML) from printing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

var _ slog.LogValuer = Secret("")
