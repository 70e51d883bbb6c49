package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// DefaultFile is the configuration file read when neither -config nor
// $TOOLGATE_CONFIG names one, if it exists.
const DefaultFile = "toolgate.toml"

// ConfigFileEnv names the environment variable that gives the
// configuration file's path.
const ConfigFileEnv = "TOOLGATE_CONFIG"

// The environment variables the TypeScript original used, kept verbatim,
// and the WorkOS webhook secret, named like them.
const (
	EnvWorkOSClientID      = "WORKOS_CLIENT_ID"
	EnvWorkOSClientSecret  = "WORKOS_CLIENT_SECRET"
	EnvCookieEncryptionKey = "COOKIE_ENCRYPTION_KEY"
	EnvWorkOSWebhookSecret = "WORKOS_WEBHOOK_SECRET"
)

// originalEnv maps the WORKOS_* and COOKIE_* environment names to their keys.
var originalEnv = map[string]string{
	EnvWorkOSClientID:      "auth.workos_client_id",
	EnvWorkOSClientSecret:  "auth.workos_api_key",
	EnvCookieEncryptionKey: "auth.cookie_encryption_key",
	EnvWorkOSWebhookSecret: "auth.workos_webhook_secret",
}

// Options says where [Load] finds its layers.
type Options struct {
	// File is the configuration file given with -config. When empty,
	// $TOOLGATE_CONFIG is used, and when that is empty too, ./toolgate.toml
	// is read if it exists. A file named explicitly must exist.
	File string
	// Environ is the environment as "NAME=value" strings; nil means
	// os.Environ(). Variables with an empty value count as unset.
	Environ []string
	// Overrides are applied last, in order; cmd/toolgate turns the flags
	// the user set into overrides.
	Overrides []Override
}

// Override sets one key from a command-line flag.
type Override struct {
	// Key is the key path, for example "server.listen".
	Key string
	// Value is the value as text, read like an environment variable.
	Value string
	// Source names the override in error messages, for example "flag -listen".
	Source string
}

// Loaded is the result of [Load].
type Loaded struct {
	// Config is the effective, validated configuration.
	Config Config
	// File is the configuration file that was read, or "" if none was.
	File string
	// Warnings are problems that do not stop start-up, such as an unknown
	// TOOLGATE_* environment variable. The caller logs them.
	Warnings []string
	// Sources maps each key path to where its value came from: "default",
	// a file path, "$NAME" or a flag.
	Sources map[string]string
}

// Load builds the configuration from defaults, the file, the environment
// and opts.Overrides, in that order, and validates it. Every error is a
// one-line *Error or *UnknownKeyError, or an error naming the file that
// could not be read or parsed.
func Load(opts Options) (*Loaded, error) {
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	l := &Loaded{Config: Default(), Sources: map[string]string{}}
	for _, k := range schema.keys {
		l.Sources[k.path] = "default"
	}

	path := opts.File
	if path == "" {
		path = lookupEnv(environ, ConfigFileEnv)
	}
	explicit := path != ""
	if !explicit {
		path = DefaultFile
	}
	if err := l.loadFile(path, explicit); err != nil {
		return nil, err
	}
	if err := l.loadEnv(environ); err != nil {
		return nil, err
	}
	if err := l.loadOverrides(opts.Overrides); err != nil {
		return nil, err
	}
	if err := validate(&l.Config, l.Sources); err != nil {
		return nil, err
	}
	return l, nil
}

// loadFile merges the TOML file at path, if any.
func (l *Loaded) loadFile(path string, required bool) error {
	info, err := os.Stat(path)
	if err != nil {
		if !required && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("config: %s: %w", path, unwrapPathError(err))
	}
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), toml.Parser()); err != nil {
		return fmt.Errorf("config: %s: %s", path, oneLine(describeParseError(err)))
	}
	l.File = path
	if err := l.mergeFile(path, k); err != nil {
		return err
	}
	if info.Mode().Perm()&0o044 != 0 {
		for _, ki := range schema.keys {
			if ki.kind == kindSecret && l.Sources[ki.path] == path {
				l.Warnings = append(l.Warnings, fmt.Sprintf("%s holds the secret %s and other users can read it; restrict it with chmod 600 or move the secret to $%s", path, ki.path, EnvName(ki.path)))
			}
		}
	}
	return nil
}

// mergeFile applies every key of a parsed file, refusing unknown keys and
// values of the wrong type.
func (l *Loaded) mergeFile(source string, k *koanf.Koanf) error {
	for _, key := range k.Keys() { // sorted, so the first error is stable
		v := k.Get(key)
		if schema.sections[key] {
			if m, ok := v.(map[string]any); ok && len(m) == 0 {
				continue // an empty [section]
			}
			return &Error{Source: source, Key: key, Value: displayValue(v), Problem: "must be a table ([" + key + "])"}
		}
		ki, ok := schema.byPath[key]
		if !ok {
			if ki = parentKey(key); ki != nil {
				return &Error{Source: source, Key: ki.path, Value: "{...}", Problem: ki.kind.allowedShape()}
			}
			return &UnknownKeyError{Source: source, Key: key, Suggestion: suggest(key, schema.paths)}
		}
		if err := ki.setTyped(&l.Config, source, v); err != nil {
			return err
		}
		l.Sources[key] = source
	}
	return nil
}

// parentKey returns the leaf key that is a strict prefix of key, if any:
// a table given where a scalar belongs, such as [log.level].
func parentKey(key string) *keyInfo {
	for i := strings.LastIndexByte(key, '.'); i > 0; i = strings.LastIndexByte(key[:i], '.') {
		if ki, ok := schema.byPath[key[:i]]; ok {
			return ki
		}
	}
	return nil
}

// loadEnv merges the environment through koanf's env provider, mapping
// variable names to keys by exact match against the known key set.
func (l *Loaded) loadEnv(environ []string) error {
	names := map[string][]string{} // key path -> variables that set it
	var unknown []string
	provider := env.Provider(".", env.Opt{
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			if value == "" {
				return "", nil
			}
			path, ok := envKey(name)
			if !ok {
				if strings.HasPrefix(name, "TOOLGATE_") && name != ConfigFileEnv {
					unknown = append(unknown, name)
				}
				return "", nil
			}
			names[path] = append(names[path], name)
			return path, value
		},
	})
	k := koanf.New(".")
	if err := k.Load(provider, nil); err != nil {
		return fmt.Errorf("config: reading the environment: %w", err)
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		msg := fmt.Sprintf("ignoring unknown environment variable %s", name)
		if s := suggest(name, envNames()); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		l.Warnings = append(l.Warnings, msg)
	}
	for _, ki := range schema.keys {
		vars := names[ki.path]
		if len(vars) == 0 {
			continue
		}
		slices.Sort(vars)
		if len(vars) > 1 && !sameValues(environ, vars) {
			return &Error{Key: ki.path, Problem: fmt.Sprintf("set differently by $%s and $%s; set only one", vars[0], vars[1])}
		}
		s, _ := k.Get(ki.path).(string)
		if err := ki.setString(&l.Config, "$"+vars[0], s); err != nil {
			return err
		}
		l.Sources[ki.path] = "$" + vars[0]
	}
	return nil
}

// loadOverrides applies command-line overrides through koanf's confmap
// provider, keeping their order (a later override wins).
func (l *Loaded) loadOverrides(overrides []Override) error {
	for _, o := range overrides {
		ki, ok := schema.byPath[o.Key]
		if !ok {
			return fmt.Errorf("config: %s: unknown key %q", o.Source, o.Key)
		}
		k := koanf.New(".")
		if err := k.Load(confmap.Provider(map[string]any{o.Key: o.Value}, "."), nil); err != nil {
			return fmt.Errorf("config: %s: %w", o.Source, err)
		}
		s, _ := k.Get(o.Key).(string)
		if err := ki.setString(&l.Config, o.Source, s); err != nil {
			return err
		}
		l.Sources[o.Key] = o.Source
	}
	return nil
}

// envKey maps an environment variable name to a key path.
func envKey(name string) (string, bool) {
	if path, ok := originalEnv[name]; ok {
		return path, true
	}
	if ki, ok := schema.byEnv[name]; ok {
		return ki.path, true
	}
	return "", false
}

// EnvName returns the environment variable that sets a key path: the
// original name for the three WorkOS/cookie keys, TOOLGATE_<PATH> for the
// rest. It returns "" for an unknown key.
func EnvName(path string) string {
	for name, p := range originalEnv {
		if p == path {
			return name
		}
	}
	if ki, ok := schema.byPath[path]; ok {
		return ki.env
	}
	return ""
}

func envNames() []string {
	out := make([]string, 0, len(schema.keys))
	for _, ki := range schema.keys {
		out = append(out, ki.env)
	}
	return out
}

func lookupEnv(environ []string, name string) string {
	v := ""
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val // the last one wins, as with os.Getenv
		}
	}
	return v
}

func sameValues(environ []string, names []string) bool {
	first := lookupEnv(environ, names[0])
	for _, n := range names[1:] {
		if lookupEnv(environ, n) != first {
			return false
		}
	}
	return true
}

// describeParseError turns a TOML decode error into "line L, column C:
// message" when the parser reports a position.
func describeParseError(err error) string {
	var pos interface{ Position() (int, int) }
	if errors.As(err, &pos) {
		row, col := pos.Position()
		return fmt.Sprintf("line %d, column %d: %v", row, col, err)
	}
	return err.Error()
}

// unwrapPathError drops the path from an *fs.PathError, which the caller
// already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
