package badgerstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const envLockDir = "TOOLGATE_BADGERSTORE_LOCK_DIR"

// TestLockChild is the child process of TestOpenLockedByAnotherProcess: it
// holds the store open until its standard input closes.
func TestLockChild(t *testing.T) {
	dir := os.Getenv(envLockDir)
	if dir == "" {
		t.Skip("only runs as the child of TestOpenLockedByAnotherProcess")
	}
	s, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
}

func TestOpenLockedByAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envLockDir+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && lines.Text() != "ready" {
		if strings.HasPrefix(lines.Text(), "error") {
			t.Fatalf("child: %s", lines.Text())
		}
	}

	_, err = Open(t.Context(), Options{Dir: dir, Logger: testLogger(t)})
	want := `data directory "` + dir + `" is in use by another toolgate process`
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open while another process holds the directory: got %v, want ErrLocked saying %q", err, want)
	}

	// The lock dies with the process, however it dies.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	s := openT(t, Options{Dir: dir})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}
