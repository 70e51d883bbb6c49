package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// writeReport writes the results as Markdown to path.
func writeReport(path string, r *results) error {
	var b strings.Builder
	o := r.opts
	fmt.Fprintf(&b, "# toolgate benchmark (make bench)\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", r.date.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- CPU: %s, %d cores\n", r.cpu, r.cores)
	fmt.Fprintf(&b, "- Go: %s; Node: %s\n", r.goVer, orUnknown(r.nodeVer))
	fmt.Fprintf(&b, "- Machine load average (1, 5, 15 min) at the start: %s; at the end: %s (the harness's own servers and load generator keep it near 3-4 on 2 cores; well above that, other work shared the CPU and the throughput numbers are low)\n", r.loadStart, r.loadEnd)
	if len(o.env) > 0 {
		fmt.Fprintf(&b, "- Experiment: toolgate ran with %s\n", strings.Join(o.env, " "))
	}
	fmt.Fprintf(&b, "- Load: tools/call add over streamable HTTP (POST, Mcp-Protocol-Version %s, no session), keep-alive, %s warm-up and %s measured per run, %d interleaved rounds (system order rotates), every answer's sum checked. Throughput is the median round; percentiles are over every call of every round.\n", protocolVersion, o.warmup, o.duration, o.rounds)
	fmt.Fprintf(&b, "- floor: go-sdk v1.8.0, native Go tool, stateless + JSON responses, no auth. toolgate: `toolgate serve` (development mode), add plugin, bearer token from its OAuth flow, gate and audit on, the per-user tool call rate limit off (`TOOLGATE_MCP_TOOL_CALLS_PER_MINUTE=0`: one user drives all the load). peer: TypeScript SDK 1.32.2 with requireBearerAuth (static verifier), stateless, JSON responses, Express.\n\n")
	fmt.Fprintf(&b, "| clients | system | req/s | p50 | p90 | p99 | errors | server CPU per call | RSS idle | RSS peak under load |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, level := range o.levels {
		for _, name := range r.systems {
			s := r.load[name][level]
			fmt.Fprintf(&b, "| %d | %s | %.0f | %s | %s | %s | %d | %.0f µs | %s | %s |\n", level, name, s.throughput, msPrec(s.p50), msPrec(s.p90), msPrec(s.p99), s.errs, float64(s.cpuPerCall)/float64(time.Microsecond), mib(r.idleRSS[name]), mib(s.peakRSS))
		}
	}
	fmt.Fprintf(&b, "\n| clients | toolgate/floor throughput | toolgate/peer throughput | toolgate/floor p99 |\n|---:|---:|---:|---:|\n")
	for _, level := range o.levels {
		t, f, p := r.load["toolgate"][level], r.load["floor"][level], r.load["peer"][level]
		fmt.Fprintf(&b, "| %d | %.2f | %.2f | %.2f |\n", level, ratio(t.throughput, f.throughput), ratio(t.throughput, p.throughput), ratio(float64(t.p99), float64(f.p99)))
	}
	fmt.Fprintf(&b, "\nTargets at the highest concurrency: toolgate/floor throughput ≥ 0.7, toolgate/peer ≥ 2, toolgate/floor p99 ≤ 2.\n")
	for _, name := range r.systems {
		for _, level := range o.levels {
			if s := r.load[name][level]; s.firstErr != nil {
				fmt.Fprintf(&b, "\nFirst error of %s at %d clients: `%s`\n", name, level, oneLine(s.firstErr.Error()))
			}
		}
	}
	fmt.Fprintf(&b, "\n## Other measurements\n\n| what | measured | target |\n|---|---:|---|\n")
	for _, e := range r.extras {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", e.what, e.value, e.target)
	}
	if bk := r.backends; bk != nil {
		fmt.Fprintf(&b, "\n## PostgreSQL backend vs Badger\n\n")
		if len(bk.load) == 0 {
			fmt.Fprintf(&b, "PostgreSQL backend %s.\n", bk.note)
		} else {
			fmt.Fprintf(&b, "The same toolgate (development mode, add plugin, the same load as above at %d clients, %d interleaved rounds) with `store.backend = \"badger\"` and `store.backend = \"postgres\"`: %s. A tool call reads no store record (the bearer token comes from the cache) and appends one audit record (batched).\n\n", bk.clients, o.rounds, bk.note)
			fmt.Fprintf(&b, "| store | req/s | p50 | p90 | p99 | errors | server CPU per call | RSS peak under load |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, name := range backends {
				s := bk.load[name]
				fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %d | %.0f µs | %s |\n", name, s.throughput, msPrec(s.p50), msPrec(s.p90), msPrec(s.p99), s.errs, float64(s.cpuPerCall)/float64(time.Microsecond), mib(s.peakRSS))
			}
			fmt.Fprintf(&b, "\npostgres/badger throughput: %.2f; p99: %.2f\n", ratio(bk.load["postgres"].throughput, bk.load["badger"].throughput), ratio(float64(bk.load["postgres"].p99), float64(bk.load["badger"].p99)))
			if len(bk.extras) > 0 {
				fmt.Fprintf(&b, "\n| store benchmark (go test -bench, 1 s) | measured |\n|---|---:|\n")
				for _, e := range bk.extras {
					fmt.Fprintf(&b, "| %s | %s |\n", e.what, e.value)
				}
			}
		}
	}
	for _, w := range r.warnings {
		fmt.Fprintf(&b, "\nNot measured: `%s`\n", oneLine(w))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results folder: %w", err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// msPrec formats a latency in milliseconds with two decimals.
func msPrec(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// oneLine shortens s to its first line, at most 300 bytes.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ReplaceAll(s, "`", "'")
}
