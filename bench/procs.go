package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a server process the harness started.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited
	err    error         // its exit status, set before exited closes
	tail   *tailBuffer   // the end of its output, for error messages
}

// procs is every process started, so that all are stopped on the way out.
var procs struct {
	sync.Mutex
	list []*proc
}

// startProc starts cmd and reads its output (stdout, or stderr with
// fromStderr) line by line until ready recognizes a line and returns what
// it found (an address). It fails when the process exits first or
// timeout passes.
func startProc(ctx context.Context, name string, cmd *exec.Cmd, fromStderr bool, timeout time.Duration, ready func(line string) (string, bool)) (*proc, string, error) {
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), tail: &tailBuffer{max: 8 << 10}}
	pr, pw := io.Pipe()
	if fromStderr {
		cmd.Stderr, cmd.Stdout = pw, p.tail
	} else {
		cmd.Stdout, cmd.Stderr = pw, p.tail
	}
	tieToParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	procs.Lock()
	procs.list = append(procs.list, p)
	procs.Unlock()
	go func() {
		p.err = cmd.Wait()
		_ = pw.Close()
		close(p.exited)
	}()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.tail.Write([]byte(line + "\n"))
			if !sent {
				if v, ok := ready(line); ok {
					found <- v
					sent = true
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr) // keep draining on a too-long line
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case v := <-found:
		return p, v, nil
	case <-p.exited:
		return nil, "", fmt.Errorf("%s exited before it was ready (%v):\n%s", name, p.err, p.tail)
	case <-t.C:
		p.stop()
		return nil, "", fmt.Errorf("%s was not ready within %s:\n%s", name, timeout, p.tail)
	case <-ctx.Done():
		p.stop()
		return nil, "", fmt.Errorf("start %s: %w", name, ctx.Err())
	}
}

// stop sends SIGTERM and waits up to 10 s for the process to exit, then
// kills it. It is safe to call more than once.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// stopAll stops every process started, the latest first.
func stopAll() {
	procs.Lock()
	list := procs.list
	procs.list = nil
	procs.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
}

// rss is the resident memory (VmRSS) of process pid in bytes.
func rss(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	return parseVmRSS(data)
}

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// maxTicks is the most clock ticks a time.Duration holds.
const maxTicks = int64(math.MaxInt64 / clockTick)

// cpuTime is the CPU time (user and system) process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read process stat: %w", err)
	}
	return parseStatCPU(data)
}

// parseStatCPU returns utime + stime of a /proc/<pid>/stat line. The
// command name in parentheses may hold spaces and parentheses, so the
// fields are counted from its last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("unexpected process stat: no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected process stat: too few fields")
	}
	var ticks int64
	for _, v := range f[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > maxTicks-ticks {
			return 0, fmt.Errorf("unexpected process stat CPU time %q", v)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// parseVmRSS finds the VmRSS line of a /proc/<pid>/status file.
func parseVmRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		v, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(v))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("unexpected VmRSS line %q", line)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS in the process status")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
