package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/auth"
	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/auth/devauthkit"
	"github.com/toolgate/toolgate/core/config"
)

// TestWorkOSWebhookEndpoint: /webhooks/workos exists in production only
// with auth.workos_webhook_secret (in both sign-in modes) and checks the
// WorkOS signature with that secret; development mode always serves it,
// with a secret of its own that no outsider knows.
func TestWorkOSWebhookEndpoint(t *testing.T) {
	const host = "mcp.example.com"
	const secret = "whsec_operator_0123456789"
	body := `{"id":"event_1","event":"dsync.user.created","data":{"id":"x"}}`
	post := func(t *testing.T, base, host, sig string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+auth.PathWorkOSWebhook, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		if sig != "" {
			req.Header.Set(authkit.WebhookSignatureHeader, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	signed := devauthkit.SignWebhook(secret, []byte(body), time.Now())

	t.Run("production without a secret", func(t *testing.T) {
		ts := startServer(t, productionConfig(t), nil)
		if code := post(t, ts.base, host, signed); code != http.StatusNotFound {
			t.Errorf("POST %s = %d, want 404 (off)", auth.PathWorkOSWebhook, code)
		}
	})
	for _, mode := range []string{"proxy", "authkit"} {
		t.Run("production "+mode, func(t *testing.T) {
			cfg := productionConfig(t)
			cfg.Auth.WorkOSWebhookSecret = config.Secret(secret)
			if mode == "authkit" {
				cfg.Auth.Mode = "authkit"
				cfg.Auth.AuthKitDomain = "https://example.authkit.app"
			}
			ts := startServer(t, cfg, nil)
			if code := post(t, ts.base, host, ""); code != http.StatusUnauthorized {
				t.Errorf("unsigned delivery = %d, want 401", code)
			}
			if code := post(t, ts.base, host, devauthkit.SignWebhook("whsec_other", []byte(body), time.Now())); code != http.StatusUnauthorized {
				t.Errorf("delivery signed with another secret = %d, want 401", code)
			}
			if code := post(t, ts.base, host, signed); code != http.StatusOK {
				t.Errorf("signed delivery = %d, want 200", code)
			}
		})
	}
	t.Run("development", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Auth.WorkOSWebhookSecret = config.Secret(secret) // ignored in development
		ts := startServer(t, cfg, nil)
		if code := post(t, ts.base, "", signed); code != http.StatusUnauthorized {
			t.Errorf("delivery signed with the configured secret = %d, want 401 (development uses its own)", code)
		}
	})
}
