package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// benchLine is one result line of go test -bench.
type benchLine struct {
	name    string             // without the Benchmark prefix and the -GOMAXPROCS suffix
	metrics map[string]float64 // unit → value, e.g. "ns/op" → 83.2
}

// parseBenchOutput returns the result lines of go test -bench output:
// "BenchmarkName-2   1000   83.2 ns/op   0.5 p50-µs ...".
func parseBenchOutput(out string) []benchLine {
	var lines []benchLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		l := benchLine{name: name, metrics: map[string]float64{}}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			l.metrics[f[i+1]] = v
		}
		if ok && name != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// goBench runs go test -run '^$' -bench pattern with extra flags on pkg
// from the module root dir and returns its result lines.
func goBench(ctx context.Context, dir, goCmd, pkg, pattern string, extra ...string) ([]benchLine, error) {
	args := append([]string{"test", "-run", "^$", "-bench", pattern}, extra...)
	cmd := exec.CommandContext(ctx, goCmd, append(args, pkg)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(append(args, pkg), " "), err, out)
	}
	lines := parseBenchOutput(string(out))
	if len(lines) == 0 {
		return nil, fmt.Errorf("go test %s: no benchmark results in:\n%s", pkg, out)
	}
	return lines, nil
}
