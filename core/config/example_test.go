package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// settingLine matches a commented-out setting or table header in
// toolgate.example.toml, as opposed to a prose comment.
var settingLine = regexp.MustCompile(`^# ((\[\[?[a-z_.]+\]\]?)|([a-z_]+ = .*))$`)

// TestExampleFileMatchesDefaults uncomments every setting of
// toolgate.example.toml: the result must load, equal the built-in
// defaults, and mention every key, so the example cannot drift from the
// code.
func TestExampleFileMatchesDefaults(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "toolgate.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var active strings.Builder
	for line := range strings.SplitSeq(string(raw), "\n") {
		if m := settingLine.FindStringSubmatch(line); m != nil {
			active.WriteString(m[1] + "\n")
		} else if !strings.HasPrefix(line, "#") && strings.TrimSpace(line) != "" {
			t.Errorf("toolgate.example.toml has an active line %q; every line should be commented out", line)
		}
	}
	path := filepath.Join(t.TempDir(), "toolgate.toml")
	if err := os.WriteFile(path, []byte(active.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Load(Options{File: path, Environ: []string{}})
	if err != nil {
		t.Fatalf("the uncommented example does not load: %v\n%s", err, active.String())
	}
	if want := Default(); !reflect.DeepEqual(l.Config, want) {
		t.Errorf("the example's values differ from Default():\n got %+v\nwant %+v", l.Config, want)
	}
	for _, key := range Keys() {
		if l.Sources[key] != path {
			t.Errorf("toolgate.example.toml does not document %s", key)
		}
	}
}

// TestReferenceDocumentsEveryKey checks docs/configuration.md names every
// key and its environment variable.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, key := range Keys() {
		_, name, _ := strings.Cut(key, ".")
		section, _, _ := strings.Cut(key, ".")
		if !strings.Contains(doc, "`"+name+"`") || !strings.Contains(doc, "["+section+"]") {
			t.Errorf("docs/configuration.md does not document %s", key)
		}
		if !strings.Contains(doc, EnvName(key)) {
			t.Errorf("docs/configuration.md does not name %s for %s", EnvName(key), key)
		}
	}
}
