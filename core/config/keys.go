package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// valueKind is the shape of a configuration value, which decides how it
// is read from TOML and from strings (environment variables and flags).
type valueKind int

const (
	kindString valueKind = iota
	kindSecret
	kindBool
	kindInt
	kindDuration
	kindStrings
	kindDevUsers
)

// keyInfo describes one leaf key of [Config].
type keyInfo struct {
	path  string // dotted path, e.g. "server.public_url"
	env   string // TOOLGATE_SERVER_PUBLIC_URL
	index []int  // reflect field index path from Config
	kind  valueKind
}

var (
	secretType   = reflect.TypeFor[Secret]()
	durationType = reflect.TypeFor[time.Duration]()
	devUsersType = reflect.TypeFor[[]DevUser]()
	stringsType  = reflect.TypeFor[[]string]()
)

// schema is the set of known keys, derived once from the Config struct's
// koanf tags so that adding a field is all it takes to add a key.
var schema = buildSchema()

type keySchema struct {
	keys     []*keyInfo          // in declaration order
	byPath   map[string]*keyInfo // path -> key
	byEnv    map[string]*keyInfo // TOOLGATE_… name -> key
	sections map[string]bool     // table paths: "server", "store.postgres", …
	paths    []string            // every key path, for suggestions
}

func buildSchema() *keySchema {
	s := &keySchema{byPath: map[string]*keyInfo{}, byEnv: map[string]*keyInfo{}, sections: map[string]bool{}}
	s.walk(reflect.TypeFor[Config](), "", nil)
	return s
}

func (s *keySchema) walk(t reflect.Type, prefix string, index []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("koanf")
		if name == "" {
			panic(fmt.Sprintf("config: field %s.%s has no koanf tag", t.Name(), f.Name))
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		idx := append(slices.Clone(index), i)
		var k valueKind
		switch {
		case f.Type == secretType:
			k = kindSecret
		case f.Type == durationType:
			k = kindDuration
		case f.Type == devUsersType:
			k = kindDevUsers
		case f.Type == stringsType:
			k = kindStrings
		case f.Type.Kind() == reflect.String:
			k = kindString
		case f.Type.Kind() == reflect.Bool:
			k = kindBool
		case f.Type.Kind() == reflect.Int || f.Type.Kind() == reflect.Int64:
			k = kindInt
		case f.Type.Kind() == reflect.Struct:
			s.sections[path] = true
			s.walk(f.Type, path, idx)
			continue
		default:
			panic(fmt.Sprintf("config: field %s.%s has unsupported type %s", t.Name(), f.Name, f.Type))
		}
		ki := &keyInfo{path: path, env: envName(path), index: idx, kind: k}
		if other, dup := s.byEnv[ki.env]; dup {
			panic(fmt.Sprintf("config: keys %s and %s both map to $%s", other.path, path, ki.env))
		}
		s.keys = append(s.keys, ki)
		s.byPath[path] = ki
		s.byEnv[ki.env] = ki
		s.paths = append(s.paths, path)
	}
}

// envName is the TOOLGATE_* variable for a key path.
func envName(path string) string {
	return "TOOLGATE_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// Keys returns every configuration key path, in declaration order.
func Keys() []string { return slices.Clone(schema.paths) }

// SecretKeys returns the path of every key whose value is a [Secret], in
// declaration order: the values `toolgate config`, error messages and logs
// hide.
func SecretKeys() []string {
	var paths []string
	for _, k := range schema.keys {
		if k.kind == kindSecret {
			paths = append(paths, k.path)
		}
	}
	return paths
}

// field returns the settable field of cfg for k.
func (k *keyInfo) field(cfg *Config) reflect.Value {
	return reflect.ValueOf(cfg).Elem().FieldByIndex(k.index)
}

// allowedShape says, for an error message, what a value of kind k looks like.
func (k valueKind) allowedShape() string {
	switch k {
	case kindBool:
		return "must be true or false"
	case kindInt:
		return "must be an integer"
	case kindDuration:
		return `must be a duration such as "90s", "15m" or "1h30m"`
	case kindStrings:
		return "must be a list of strings"
	case kindDevUsers:
		return "must be an array of tables ([[auth.dev_users]])"
	default:
		return "must be a string"
	}
}

// display renders v for an error message, hiding secrets.
func (k *keyInfo) display(v any) string {
	if k.kind == kindSecret {
		if s, ok := v.(string); ok && s == "" {
			return `""`
		}
		return Redacted
	}
	return displayValue(v)
}

// setTyped stores a value decoded from TOML into cfg. It returns a problem
// description when the value has the wrong type; nested dev-user errors
// come back as complete errors.
func (k *keyInfo) setTyped(cfg *Config, source string, v any) error {
	f := k.field(cfg)
	bad := func() error {
		return &Error{Source: source, Key: k.path, Value: k.display(v), Problem: k.kind.allowedShape()}
	}
	switch k.kind {
	case kindString, kindSecret:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		f.SetString(s)
	case kindBool:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		f.SetBool(b)
	case kindInt:
		n, ok := v.(int64)
		if !ok {
			return bad()
		}
		if f.OverflowInt(n) {
			return &Error{Source: source, Key: k.path, Value: k.display(v), Problem: "is out of range"}
		}
		f.SetInt(n)
	case kindDuration:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return bad()
		}
		f.SetInt(int64(d))
	case kindStrings:
		list, ok := v.([]any)
		if !ok {
			return bad()
		}
		out := make([]string, 0, len(list))
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				return bad()
			}
			out = append(out, s)
		}
		f.Set(reflect.ValueOf(out))
	case kindDevUsers:
		users, err := decodeDevUsers(source, k.path, v)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(users))
	}
	return nil
}

// setString stores a value given as text (environment variable or flag).
func (k *keyInfo) setString(cfg *Config, source, s string) error {
	f := k.field(cfg)
	bad := func(problem string) error {
		return &Error{Source: source, Key: k.path, Value: k.display(s), Problem: problem}
	}
	switch k.kind {
	case kindString, kindSecret:
		f.SetString(s)
	case kindBool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return bad(k.kind.allowedShape())
		}
		f.SetBool(b)
	case kindInt:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || f.OverflowInt(n) {
			return bad(k.kind.allowedShape())
		}
		f.SetInt(n)
	case kindDuration:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return bad(k.kind.allowedShape())
		}
		f.SetInt(int64(d))
	case kindStrings:
		out := []string{}
		for part := range strings.SplitSeq(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
		f.Set(reflect.ValueOf(out))
	case kindDevUsers:
		return bad("can only be set in the configuration file")
	}
	return nil
}

// devUserKeys are the keys of one [[auth.dev_users]] table.
var devUserKeys = []string{"email", "first_name", "last_name", "role", "permissions", "organization"}

func decodeDevUsers(source, path string, v any) ([]DevUser, error) {
	list, ok := v.([]any)
	if !ok {
		// go-toml decodes an array of tables into []any; anything else is
		// a scalar, an inline table or an array of something else.
		return nil, &Error{Source: source, Key: path, Value: displayValue(v), Problem: kindDevUsers.allowedShape()}
	}
	users := make([]DevUser, 0, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, &Error{Source: source, Key: path, Value: displayValue(v), Problem: kindDevUsers.allowedShape()}
		}
		elem := fmt.Sprintf("%s[%d]", path, i)
		var u DevUser
		keys := make([]string, 0, len(m))
		for key := range m {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		for _, key := range keys {
			val := m[key]
			var dst *string
			switch key {
			case "email":
				dst = &u.Email
			case "first_name":
				dst = &u.FirstName
			case "last_name":
				dst = &u.LastName
			case "role":
				dst = &u.Role
			case "organization":
				dst = &u.Organization
			case "permissions":
				perms, ok := val.([]any)
				if !ok {
					return nil, &Error{Source: source, Key: elem + ".permissions", Value: displayValue(val), Problem: kindStrings.allowedShape()}
				}
				u.Permissions = make([]string, 0, len(perms))
				for _, p := range perms {
					s, ok := p.(string)
					if !ok {
						return nil, &Error{Source: source, Key: elem + ".permissions", Value: displayValue(val), Problem: kindStrings.allowedShape()}
					}
					u.Permissions = append(u.Permissions, s)
				}
				continue
			default:
				return nil, &UnknownKeyError{Source: source, Key: elem + "." + key, Suggestion: prefixed(elem, suggest(key, devUserKeys))}
			}
			s, ok := val.(string)
			if !ok {
				return nil, &Error{Source: source, Key: elem + "." + key, Value: displayValue(val), Problem: kindString.allowedShape()}
			}
			*dst = s
		}
		if u.Permissions == nil {
			u.Permissions = []string{}
		}
		users = append(users, u)
	}
	return users, nil
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + "." + s
}
