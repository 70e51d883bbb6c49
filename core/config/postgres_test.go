package config

import (
	"strings"
	"testing"
)

// The postgres backend needs a well-formed URL, and no error about it
// quotes the URL (it may hold a password).
func TestPostgresBackend(t *testing.T) {
	const password = "pa55-w0rd"
	tests := []struct {
		name    string
		environ []string
		want    string // "" means Load succeeds
	}{
		{"badger ignores postgres settings", []string{"TOOLGATE_STORE_POSTGRES_MAX_CONNS=0"}, ""},
		{"postgres with a URL", []string{"TOOLGATE_STORE_BACKEND=postgres", "TOOLGATE_STORE_POSTGRES_URL=postgres://toolgate:" + password + "@db.internal:5432/toolgate?sslmode=require"}, ""},
		{"postgresql scheme", []string{"TOOLGATE_STORE_BACKEND=postgres", "TOOLGATE_STORE_POSTGRES_URL=postgresql://db.internal/toolgate"}, ""},
		{"unknown backend", []string{"TOOLGATE_STORE_BACKEND=mysql"},
			`config: $TOOLGATE_STORE_BACKEND: store.backend = "mysql": must be one of badger, postgres`},
		{"postgres without a URL", []string{"TOOLGATE_STORE_BACKEND=postgres"},
			`config: store.postgres.url: must be set when store.backend is "postgres", for example postgres://toolgate:PASSWORD@db.internal:5432/toolgate (prefer $TOOLGATE_STORE_POSTGRES_URL)`},
		{"key=value string", []string{"TOOLGATE_STORE_BACKEND=postgres", "TOOLGATE_STORE_POSTGRES_URL=host=db password=" + password},
			`config: $TOOLGATE_STORE_POSTGRES_URL: store.postgres.url = <redacted>: must be a postgres:// or postgresql:// URL with a host, for example postgres://toolgate:PASSWORD@db.internal:5432/toolgate`},
		{"malformed URL", []string{"TOOLGATE_STORE_BACKEND=postgres", "TOOLGATE_STORE_POSTGRES_URL=postgres://toolgate:" + password + "@[db"},
			`config: $TOOLGATE_STORE_POSTGRES_URL: store.postgres.url = <redacted>: must be a postgres:// or postgresql:// URL with a host, for example postgres://toolgate:PASSWORD@db.internal:5432/toolgate`},
		{"encryption key with postgres", []string{"TOOLGATE_STORE_BACKEND=postgres", "TOOLGATE_STORE_POSTGRES_URL=postgres://db/x", "TOOLGATE_STORE_ENCRYPTION_KEY=" + strings.Repeat("ab", 32)},
			`config: $TOOLGATE_STORE_ENCRYPTION_KEY: store.encryption_key = <redacted>: applies to the badger backend only: with "postgres", encrypt in the database server (disk encryption) and in transit (sslmode=verify-full in store.postgres.url)`},
		{"pool too big", []string{"TOOLGATE_STORE_BACKEND=postgres", "TOOLGATE_STORE_POSTGRES_URL=postgres://db/x", "TOOLGATE_STORE_POSTGRES_MAX_CONNS=5000"},
			`config: $TOOLGATE_STORE_POSTGRES_MAX_CONNS: store.postgres.max_conns = 5000: must be between 1 and 1000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Load(Options{File: writeFile(t, ""), Environ: tt.environ})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if b, err := l.Config.TOML(); err != nil || strings.Contains(string(b), password) {
					t.Errorf("the rendered configuration shows the password (or failed: %v):\n%s", err, b)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want %s", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("message:\n got %s\nwant %s", got, tt.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}
