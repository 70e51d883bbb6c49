package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// threePluginsConfig is a plugins.toml for the three reference plugins in
// the drop-in folder, with the grants each asks for (as in the
// repository's plugins.toml).
const threePluginsConfig = `drop_in = "deny"

[plugins.add]

[plugins.whoami]
list_tools = true

[plugins.generateimage]
timeout = "90s"
http = ["api.cloudflare.com", "api.openai.com", "http://localhost:8080"]
progress = true
config = { backend = "procedural", openai_base_url = "https://api.openai.com/v1", openai_model = "dall-e-3", openai_size = "1024x1024", request_timeout = "60s" }
secrets = { cloudflare_account_id = "CLOUDFLARE_ACCOUNT_ID", cloudflare_api_token = "CLOUDFLARE_API_TOKEN", openai_api_key = "OPENAI_API_KEY" }
`

// toolgateServer is a running "toolgate serve".
type toolgateServer struct {
	*proc
	public string // public_url
	admin  string // host:port of the admin endpoint, with pprof
	ready  time.Duration
}

// startToolgate runs o.toolgate serve (with o.env added to its
// environment) in development mode on a free loopback port with its own
// data directory and the given plugins folder and file, and waits until
// /readyz answers 200. It reports the time from start to ready. With
// pprof the admin endpoint listens on a free loopback port and serves the
// Go profiles (server.pprof); without, there is no admin endpoint.
func startToolgate(ctx context.Context, o options, dataDir, pluginsDir, pluginsConfig string, pprof bool) (*toolgateServer, error) {
	adminListen := ""
	if pprof {
		adminListen = "127.0.0.1:0"
	}
	cmd := exec.Command(o.toolgate, "serve",
		"-listen", "127.0.0.1:0", "-admin-listen", adminListen,
		"-data-dir", dataDir, "-plugins-dir", pluginsDir, "-plugins-config", pluginsConfig,
		"-log-format", "json")
	cmd.Dir = filepath.Dir(dataDir)
	// The per-user tool call rate limit (600 a minute by default) is
	// off: one user drives all of the load.
	cmd.Env = append(append(cleanEnv(), "TOOLGATE_MCP_TOOL_CALLS_PER_MINUTE=0"), o.env...)
	if pprof {
		cmd.Env = append(cmd.Env, "TOOLGATE_SERVER_PPROF=true")
	}
	start := time.Now()
	var admin string
	p, addr, err := startProc(ctx, "toolgate", cmd, true, 2*time.Minute, func(line string) (string, bool) {
		var rec struct {
			Msg    string `json:"msg"`
			Public string `json:"public_url"`
			Admin  string `json:"admin"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "toolgate listening" && rec.Public != "" {
			admin = rec.Admin
			return rec.Public, true
		}
		return "", false
	})
	if err != nil {
		return nil, err
	}
	s := &toolgateServer{proc: p, public: strings.TrimSuffix(addr, "/"), admin: admin}
	if pprof && admin == "" {
		p.stop()
		return nil, fmt.Errorf("toolgate did not report its admin endpoint:\n%s", p.tail)
	}
	if err := pollUntil(ctx, time.Minute, func() (bool, error) {
		resp, err := http.Get(s.public + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		p.stop()
		return nil, fmt.Errorf("toolgate /readyz: %w\n%s", err, p.tail)
	}
	s.ready = time.Since(start)
	return s, nil
}

// pollUntil calls check every 2 ms until it reports done or fails, or
// timeout passes.
func pollUntil(ctx context.Context, timeout time.Duration, check func() (bool, error)) error {
	return pollEvery(ctx, timeout, 2*time.Millisecond, check)
}

// pollEvery calls check every interval until it reports done or fails, or
// timeout passes.
func pollEvery(ctx context.Context, timeout, interval time.Duration, check func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s: %w", timeout, ctx.Err())
		case <-t.C:
		}
	}
}

// cleanEnv is the environment without anything that would change
// toolgate's configuration (development mode needs no WorkOS settings).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TOOLGATE_") || strings.HasPrefix(kv, "WORKOS_") || strings.HasPrefix(kv, "COOKIE_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// listTools returns the tool names tools/list shows to the token's user.
func listTools(ctx context.Context, client *http.Client, url, token string) ([]string, error) {
	r, err := rpc(ctx, client, url, token, 1, "tools/list", map[string]any{})
	if err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, fmt.Errorf("tools/list: protocol error %d: %s", r.Error.Code, r.Error.Message)
	}
	if r.Result == nil {
		return nil, fmt.Errorf("tools/list: no result")
	}
	var names []string
	for _, t := range r.Result.Tools {
		names = append(names, t.Name)
	}
	return names, nil
}

// dropIn copies the plugin src into the watched folder dir (through a
// temporary name, so that the watcher sees a complete file) and returns
// how long until tools/list shows tool.
func dropIn(ctx context.Context, client *http.Client, src, dir, url, token, tool string) (time.Duration, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return 0, fmt.Errorf("drop-in: %w", err)
	}
	tmp := filepath.Join(dir, ".dropping")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return 0, fmt.Errorf("drop-in: %w", err)
	}
	start := time.Now()
	if err := os.Rename(tmp, filepath.Join(dir, filepath.Base(src))); err != nil {
		return 0, fmt.Errorf("drop-in: %w", err)
	}
	err = pollUntil(ctx, time.Minute, func() (bool, error) {
		names, err := listTools(ctx, client, url, token)
		if err != nil {
			return false, err
		}
		return slices.Contains(names, tool), nil
	})
	if err != nil {
		return 0, fmt.Errorf("drop-in: %s not listed: %w", tool, err)
	}
	return time.Since(start), nil
}

// generateImage calls generateImage with steps and checks that an image
// came back; it returns the call's latency.
func generateImage(ctx context.Context, client *http.Client, url, token string, id int64, steps int) (time.Duration, error) {
	start := time.Now()
	r, err := rpc(ctx, client, url, token, id, "tools/call", map[string]any{
		"name":      "generateImage",
		"arguments": map[string]any{"prompt": "a lighthouse on a cliff at dusk", "steps": steps},
	})
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	if _, err := toolText(r); err != nil {
		return 0, fmt.Errorf("generateImage: %w", err)
	}
	for _, c := range r.Result.Content {
		if c.Type == "image" && c.MIMEType == "image/png" && c.Data != "" {
			return took, nil
		}
	}
	return 0, fmt.Errorf("generateImage: no PNG image in the result")
}

// copyFile copies src to dst.
func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}
