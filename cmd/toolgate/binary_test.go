package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store/pgstore/pgtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m) // the replica tests share PostgreSQL databases
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// toolgateBinary builds the command once per test run.
func toolgateBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "toolgate-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "toolgate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is a running "toolgate serve".
type process struct {
	cmd    *exec.Cmd
	addr   string        // from the start line
	admin  string        // the admin endpoint's address, from the start line
	public string        // public_url, from the start line
	stderr *bytes.Buffer // everything after the start line; read after exited
	exited chan struct{} // closed when the process has exited
	err    error         // the exit status, set before exited closes
}

// startServe runs "toolgate serve" on a free loopback port in dir and
// waits for its start line, which carries the address.
func startServe(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(toolgateBinary(t), append([]string{"serve", "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-log-format", "json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	lines := bufio.NewScanner(pipe)
	for lines.Scan() {
		var rec struct {
			Msg    string `json:"msg"`
			Addr   string `json:"addr"`
			Admin  string `json:"admin"`
			Public string `json:"public_url"`
		}
		if json.Unmarshal(lines.Bytes(), &rec) == nil && rec.Msg == "toolgate listening" {
			p.addr, p.admin, p.public = rec.Addr, rec.Admin, rec.Public
			break
		}
	}
	if p.addr == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("toolgate serve exited before its start line")
	}
	go func() {
		_, _ = io.Copy(p.stderr, pipe)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails harmlessly if it already exited
		<-p.exited
	})
	return p
}

// cleanEnv is the test's environment without anything that would change
// toolgate's configuration.
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

// TestServeSmoke is "make run" in miniature: serve answers /healthz and
// exits 0 on SIGINT.
func TestServeSmoke(t *testing.T) {
	p := startServe(t, t.TempDir())
	resp, err := http.Get("http://" + p.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", resp.StatusCode, body)
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("toolgate serve after SIGINT: %v, want exit status 0\n%s", p.err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("toolgate serve did not exit within 30s of SIGINT\n%s", p.stderr)
	}
	if !strings.Contains(p.stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", p.stderr)
	}
}

// TestServeBusyDataDir starts a second server on the data directory of a
// running one: it must exit non-zero with one clear line.
func TestServeBusyDataDir(t *testing.T) {
	dir := t.TempDir()
	startServe(t, dir)
	cmd := exec.Command(toolgateBinary(t), "serve", "-listen", "127.0.0.1:0", "-log-level", "error")
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitError {
		t.Fatalf("second serve: %v, want exit status %d\n%s", err, exitError, out)
	}
	want := fmt.Sprintf("toolgate: data directory %q is in use by another toolgate process; stop it, or point store.dir (-data-dir) at another directory\n", filepath.Join(dir, "data"))
	if string(out) != want {
		t.Errorf("second serve printed\n%q\nwant\n%q", out, want)
	}
}

// TestServeSignInAndAdmin: the real process with port 0 names its real
// port in the OAuth metadata, and "toolgate grants list" reaches its admin
// endpoint through the token in the data directory.
func TestServeSignInAndAdmin(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	_, port, _ := strings.Cut(p.addr, ":")
	if p.public != "http://localhost:"+port || p.admin == "" {
		t.Fatalf("start line: public_url %q, admin %q; want http://localhost:%s and an admin address", p.public, p.admin, port)
	}
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/.well-known/oauth-authorization-server", nil)
	req.Host = "localhost:" + port
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Issuer string `json:"issuer"`
	}
	err = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if err != nil || meta.Issuer != p.public {
		t.Errorf("issuer = %q (%v), want %q", meta.Issuer, err, p.public)
	}
	cmd := exec.Command(toolgateBinary(t), "grants", "list", "-data-dir", filepath.Join(dir, "data"), "-admin-listen", p.admin)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "no grants\n" {
		t.Errorf("toolgate grants list = %v %q, want \"no grants\"", err, out)
	}
}
