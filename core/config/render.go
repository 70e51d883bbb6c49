package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
)

// TOML renders the configuration as a TOML document that [Load] accepts,
// with every non-empty secret replaced by [Redacted]. Durations are
// written as Go duration strings.
func (c *Config) TOML() ([]byte, error) {
	root := map[string]any{}
	for _, ki := range schema.keys {
		parts := strings.Split(ki.path, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = renderValue(ki, ki.field(c))
	}
	out, err := toml.Parser().Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("config: rendering TOML: %w", err)
	}
	return out, nil
}

func renderValue(ki *keyInfo, f reflect.Value) any {
	switch ki.kind {
	case kindSecret:
		return f.Interface().(Secret).String()
	case kindDuration:
		return formatDuration(time.Duration(f.Int()))
	case kindInt:
		return f.Int()
	case kindStrings:
		list := f.Interface().([]string)
		if list == nil {
			list = []string{}
		}
		return list
	case kindDevUsers:
		users := f.Interface().([]DevUser)
		out := make([]map[string]any, 0, len(users))
		for _, u := range users {
			perms := u.Permissions
			if perms == nil {
				perms = []string{}
			}
			out = append(out, map[string]any{
				"email":        u.Email,
				"first_name":   u.FirstName,
				"last_name":    u.LastName,
				"role":         u.Role,
				"permissions":  perms,
				"organization": u.Organization,
			})
		}
		return out
	default:
		return f.Interface()
	}
}
