package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// profileSeconds is the length of the CPU profile profileToolgate takes.
const profileSeconds = 10

// profileToolgate starts toolgate on data with the plugins folder dir and
// file config (add) and its Go profiles on the admin endpoint
// (server.pprof), drives tools/call add at conc clients, takes a
// profileSeconds CPU profile from /debug/pprof/profile while the load
// runs, and writes the top functions by cumulative and by own time,
// through "go tool pprof", to path as Markdown.
func profileToolgate(ctx context.Context, o options, data, dir, config string, conc int, path string) error {
	load1 := loadAverage()
	tg, err := startToolgate(ctx, o, data, dir, config, true)
	if err != nil {
		return err
	}
	defer tg.stop()
	token, err := signIn(ctx, tg.public, "alice@example.com")
	if err != nil {
		return fmt.Errorf("profile: sign in: %w", err)
	}
	adminToken, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		return fmt.Errorf("profile: admin token: %w", err)
	}

	const warmup = 2 * time.Second
	sys := system{name: "toolgate", url: tg.public + "/mcp", token: token, pid: tg.cmd.Process.Pid}
	lc := newLoadClient(conc)
	defer lc.CloseIdleConnections()
	var seq atomic.Int64
	done := make(chan run, 1)
	go func() { done <- load(ctx, lc, sys, conc, warmup, (profileSeconds+2)*time.Second, &seq) }()
	select {
	case <-time.After(warmup):
	case <-ctx.Done():
		<-done
		return ctx.Err()
	}
	prof, perr := fetchProfile(ctx, "http://"+tg.admin+"/debug/pprof/profile?seconds="+fmt.Sprint(profileSeconds), strings.TrimSpace(string(adminToken)))
	r := <-done
	if perr != nil {
		return perr
	}
	if r.errs > 0 {
		return fmt.Errorf("profile: %d errors under load (first: %w)", r.errs, r.firstErr)
	}
	tmp, err := os.CreateTemp("", "toolgate-cpu-*.pprof")
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(prof); err != nil {
		tmp.Close()
		return fmt.Errorf("profile: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	byCum, err := pprofTop(ctx, o.root, tmp.Name(), "-cum")
	if err != nil {
		return err
	}
	byFlat, err := pprofTop(ctx, o.root, tmp.Name())
	if err != nil {
		return err
	}
	st := summarize([]run{r})
	var b strings.Builder
	fmt.Fprintf(&b, "# Where toolgate's CPU goes at %d clients\n\n", conc)
	fmt.Fprintf(&b, "Written by `make bench` (`bench/profile.go`), %s, on the machine of `latest.md`"+
		" (load average at the start: %s). `toolgate serve` with the add plugin, gate and audit on, as in `latest.md`,"+
		" plus `server.pprof = true`; the harness drives tools/call add at %d clients and takes a %d s CPU profile"+
		" from `/debug/pprof/profile` on the admin listener during the run. That run: %.0f req/s, p50 %s, p99 %s"+
		" (profiling costs a few percent; the numbers to compare are in `latest.md`).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), load1,
		conc, profileSeconds, st.throughput, msPrec(st.p50), msPrec(st.p99))
	fmt.Fprintf(&b, "`runtime._ExternalCode` is time in code the Go runtime cannot name: the plugin's WebAssembly, compiled to native code by wazero."+
		" `Total samples` well below `Duration` times the cores means the CPU was shared with other work.\n\n")
	fmt.Fprintf(&b, "To profile by hand: run toolgate with `TOOLGATE_SERVER_PPROF=true` and see docs/configuration.md#profiling."+
		" Earlier hand-made analyses of this path (a `perf` profile, the `store.sync_writes` experiment) are in this file's git history.\n\n")
	fmt.Fprintf(&b, "## Top %d by cumulative time\n\n```text\n%s```\n\n", pprofNodes, byCum)
	fmt.Fprintf(&b, "## Top %d by own (flat) time\n\n```text\n%s```\n", pprofNodes, byFlat)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// fetchProfile GETs a pprof endpoint of the admin listener with its token.
func fetchProfile(ctx context.Context, url, token string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, (profileSeconds+30)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("profile: read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("profile: %s answered %s: %s", url, resp.Status, oneLine(string(body)))
	}
	return body, nil
}

// pprofNodes is how many functions each table of the profile shows.
const pprofNodes = 25

// pprofTop runs "go tool pprof -top" on the profile file with extra
// flags and returns its output.
func pprofTop(ctx context.Context, dir, file string, extra ...string) (string, error) {
	args := append([]string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", pprofNodes)}, extra...)
	cmd := exec.CommandContext(ctx, "go", append(args, file)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg += ": " + oneLine(string(ee.Stderr))
		}
		return "", fmt.Errorf("profile: go tool pprof: %s", msg)
	}
	return string(out), nil
}

// loadAverage is the 1, 5 and 15 minute load averages of the machine, or
// "unknown".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
