package main

import (
	"strings"
	"testing"
)

func TestParseSmaps(t *testing.T) {
	const smaps = `00400000-00c00000 r-xp 00000000 08:01 1234 /usr/bin/toolgate
Size:               8192 kB
Rss:                4000 kB
Shared_Clean:        100 kB
Shared_Dirty:          0 kB
c000000000-c004000000 rw-p 00000000 00:00 0 
Rss:               30000 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
7f0000000000-7f0001000000 r-xp 00000000 00:00 0 
Rss:               16000 kB
7f0002000000-7f0002100000 rw-s 00000000 08:01 99 /data/000001.vlog (deleted)
Rss:                 500 kB
Shared_Dirty:         20 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Rss:                  16 kB
VmFlags: rd wr mr mw me gd ac
`
	var m memParts
	if err := parseSmaps(strings.NewReader(smaps), "/usr/bin/toolgate", &m); err != nil {
		t.Fatal(err)
	}
	want := memParts{rss: 50516 << 10, binary: 4000 << 10, files: 500 << 10, anonExec: 16000 << 10, anon: 30016 << 10, anonShared: 120 << 10}
	if m != want {
		t.Errorf("parseSmaps = %+v, want %+v", m, want)
	}
	if err := parseSmaps(strings.NewReader("00400000-00c00000 r-xp 0 0 0\nRss: lots kB\n"), "", &m); err == nil {
		t.Error("parseSmaps accepted an Rss that is not a number")
	}
}

func TestParseMetrics(t *testing.T) {
	const body = `# HELP go_memstats_heap_inuse_bytes Number of heap bytes that are in use.
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 5.0331648e+07
toolgate_plugin_instances{plugin="add"} 1
toolgate_plugin_instances{plugin="generateimage"} 2
toolgate_plugin_call_duration_seconds_bucket{plugin="add",tool="add",le="+Inf"} 7
broken_line
`
	got := parseMetrics([]byte(body))
	for name, want := range map[string]float64{
		"go_memstats_heap_inuse_bytes":                 50331648,
		"toolgate_plugin_instances":                    3,
		"toolgate_plugin_call_duration_seconds_bucket": 7,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if _, ok := got["broken_line"]; ok {
		t.Error("a line without a value was parsed")
	}
}
