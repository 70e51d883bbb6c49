package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// memParts is where a process's resident memory is, from the kernel's
// view (/proc/<pid>/smaps) and, for toolgate, the Go runtime's (/metrics).
type memParts struct {
	// From smaps, resident bytes of:
	rss        int64 // every mapping
	binary     int64 // the executable's own file mappings (code, data)
	files      int64 // other file mappings (shared libraries, Badger's tables and value log)
	anonExec   int64 // anonymous executable mappings (wazero's native code)
	anon       int64 // other anonymous mappings (Go heap and stacks, C allocations)
	anonShared int64 // of rss: pages shared with another process, for reference

	// From /metrics (the Go collector and the plugin host); -1 when absent.
	heapInuse    int64 // go_memstats_heap_inuse_bytes: spans with live objects
	heapFree     int64 // heap_idle − heap_released: free pages not yet returned to the OS
	heapReleased int64 // go_memstats_heap_released_bytes: returned (not resident)
	stack        int64 // go_memstats_stack_inuse_bytes
	runtimeOther int64 // mspan, mcache, buckhash, gc and other runtime metadata
	linear       int64 // toolgate_plugin_linear_memory_bytes: linear memories of live instances
	instances    int64 // toolgate_plugin_instances
	releases     int64 // toolgate_plugin_memory_releases_total
}

// measureMemory reads the memory breakdown of process pid; metricsURL, when
// not empty, is its Prometheus endpoint.
func measureMemory(ctx context.Context, client *http.Client, pid int, metricsURL string) (memParts, error) {
	m := memParts{heapInuse: -1, heapFree: -1, heapReleased: -1, stack: -1, runtimeOther: -1, linear: -1, instances: -1, releases: -1}
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		return m, fmt.Errorf("memory breakdown: %w", err)
	}
	err = parseSmaps(f, exe, &m)
	f.Close()
	if err != nil {
		return m, err
	}
	if metricsURL == "" {
		return m, nil
	}
	body, err := scrape(ctx, client, metricsURL)
	if err != nil {
		return m, fmt.Errorf("memory breakdown: %w", err)
	}
	mt := parseMetrics(body)
	get := func(name string) int64 {
		if v, ok := mt[name]; ok {
			return int64(v)
		}
		return -1
	}
	if idle, rel := get("go_memstats_heap_idle_bytes"), get("go_memstats_heap_released_bytes"); idle >= 0 && rel >= 0 {
		m.heapFree, m.heapReleased = idle-rel, rel
	}
	m.heapInuse = get("go_memstats_heap_inuse_bytes")
	m.stack = get("go_memstats_stack_inuse_bytes")
	other := int64(0)
	for _, n := range []string{"go_memstats_mspan_inuse_bytes", "go_memstats_mcache_inuse_bytes", "go_memstats_buck_hash_sys_bytes", "go_memstats_gc_sys_bytes", "go_memstats_other_sys_bytes"} {
		other += max(get(n), 0)
	}
	m.runtimeOther = other
	m.linear = get("toolgate_plugin_linear_memory_bytes")
	m.instances = get("toolgate_plugin_instances")
	m.releases = get("toolgate_plugin_memory_releases_total")
	return m, nil
}

// memoryReleases is toolgate_plugin_memory_releases_total, read from
// metricsURL.
func memoryReleases(ctx context.Context, client *http.Client, metricsURL string) (int64, error) {
	body, err := scrape(ctx, client, metricsURL)
	if err != nil {
		return 0, err
	}
	v, ok := parseMetrics(body)["toolgate_plugin_memory_releases_total"]
	if !ok {
		return 0, fmt.Errorf("%s has no toolgate_plugin_memory_releases_total", metricsURL)
	}
	return int64(v), nil
}

// scrape returns the body of the Prometheus endpoint metricsURL.
func scrape(ctx context.Context, client *http.Client, metricsURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s answered %s", metricsURL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("metrics: read %s: %w", metricsURL, err)
	}
	return body, nil
}

// parseSmaps adds up the Rss of each mapping of a /proc/<pid>/smaps file
// by kind; exe is the path of the process's executable.
func parseSmaps(r io.Reader, exe string, m *memParts) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	kind := ""
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if isMappingHeader(fields[0]) {
			perms, path := "", ""
			if len(fields) > 1 {
				perms = fields[1]
			}
			if len(fields) > 5 {
				path = strings.Join(fields[5:], " ")
			}
			switch {
			case path != "" && path == exe:
				kind = "binary"
			case path != "" && !strings.HasPrefix(path, "["):
				kind = "files"
			case strings.Contains(perms, "x"):
				kind = "anonExec"
			default:
				kind = "anon"
			}
			continue
		}
		if len(fields) < 2 || (fields[0] != "Rss:" && fields[0] != "Shared_Clean:" && fields[0] != "Shared_Dirty:") {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return fmt.Errorf("memory breakdown: bad smaps line %q", line)
		}
		b := kb << 10
		if fields[0] != "Rss:" {
			m.anonShared += b
			continue
		}
		m.rss += b
		switch kind {
		case "binary":
			m.binary += b
		case "files":
			m.files += b
		case "anonExec":
			m.anonExec += b
		default:
			m.anon += b
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("memory breakdown: read smaps: %w", err)
	}
	return nil
}

// isMappingHeader reports whether the first field of an smaps line is an
// address range ("7f12a000-7f12b000"), which starts a mapping.
func isMappingHeader(f string) bool {
	lo, hi, ok := strings.Cut(f, "-")
	if !ok || lo == "" || hi == "" {
		return false
	}
	for _, s := range []string{lo, hi} {
		if _, err := strconv.ParseUint(s, 16, 64); err != nil {
			return false
		}
	}
	return true
}

// parseMetrics reads the Prometheus text format into name → value, adding
// up the series of one name (all labels).
func parseMetrics(body []byte) map[string]float64 {
	out := map[string]float64{}
	for line := range bytes.Lines(body) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(s, " ")
		if i := strings.IndexByte(s, '{'); i >= 0 {
			j := strings.LastIndexByte(s, '}')
			if j < i {
				continue
			}
			name, rest, ok = s[:i], strings.TrimSpace(s[j+1:]), true
		}
		if !ok {
			continue
		}
		val, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out
}

// String is the breakdown on one line, for the report.
func (m memParts) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "RSS %s = anonymous %s + executable anonymous (wazero code) %s + binary %s + other files %s",
		mib(m.rss), mib(m.anon), mib(m.anonExec), mib(m.binary), mib(m.files))
	if m.heapInuse >= 0 {
		fmt.Fprintf(&b, "; Go heap in use %s (of it plugin linear memory %s in %d instances), heap free but not returned %s, stacks %s, runtime metadata %s",
			mib(m.heapInuse), mibOrNA(m.linear), m.instances, mibOrNA(m.heapFree), mibOrNA(m.stack), mibOrNA(m.runtimeOther))
	}
	return b.String()
}

func mibOrNA(v int64) string {
	if v < 0 {
		return "n/a"
	}
	return mib(v)
}
