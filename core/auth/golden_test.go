package auth

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestMetadataGolden pins the exact metadata documents (with the test
// server's address replaced by BASE): a change to what clients discover
// must be deliberate. Run with -update to accept a change.
func TestMetadataGolden(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	var out bytes.Buffer
	for _, path := range []string{PathASMetadata, PathPRMetadata, PathPRMetadata + PathMCP, PathPRMetadata + PathSSE} {
		_, body := e.do("GET", path, "", "", nil)
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, body, "", "  "); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out.WriteString("-- " + path + " --\n")
		out.WriteString(strings.ReplaceAll(pretty.String(), e.base, "BASE") + "\n")
	}
	golden := filepath.Join("testdata", "metadata.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("metadata changed; got:\n%s\nwant:\n%s", out.Bytes(), want)
	}
}
