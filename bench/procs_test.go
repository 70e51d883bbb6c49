package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{"found", "Name:\tx\nVmPeak:\t 2000 kB\nVmRSS:\t    1024 kB\nThreads:\t3\n", 1024 << 10, false},
		{"missing", "Name:\tx\n", 0, true},
		{"no unit", "VmRSS:\t1024\n", 0, true},
		{"not a number", "VmRSS:\tmany kB\n", 0, true},
		{"negative", "VmRSS:\t-1 kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(tt.status))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseVmRSS = %d, %v, want %d (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRSSOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	v, err := rss(os.Getpid())
	if err != nil || v <= 0 {
		t.Fatalf("rss(self) = %d, %v, want a positive size", v, err)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 8}
	for _, s := range []string{"abc", "defgh", "ijklmnopq"} {
		if n, err := tb.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := tb.String(); got != "jklmnopq" {
		t.Fatalf("tail = %q, want the last 8 bytes", got)
	}
}

// FuzzParseVmRSS: /proc status text never panics the parser, and a size
// it returns is not negative.
func FuzzParseVmRSS(f *testing.F) {
	f.Add("VmRSS:\t 12 kB\n")
	f.Add("VmRSS:\n")
	f.Add(strings.Repeat("x", 10))
	f.Fuzz(func(t *testing.T, status string) {
		if v, err := parseVmRSS([]byte(status)); err == nil && v < 0 {
			t.Fatalf("parseVmRSS(%q) = %d", status, v)
		}
	})
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "42 (toolgate) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 8 0", 3 * time.Second, false},
		{"name with spaces and parens", "7 (a b) c)) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0", 30 * time.Millisecond, false},
		{"no name", "42 toolgate S 1", 0, true},
		{"too short", "42 (x) S 1 2 3", 0, true},
		{"not a number", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 u 50 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseStatCPU = %v, %v, want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzParseStatCPU: any stat text parses without panicking, never to a
// negative time.
func FuzzParseStatCPU(f *testing.F) {
	f.Add("1 (x) S 1 1 1 0 -1 0 0 0 0 0 3 4 0 0")
	f.Add(")")
	f.Fuzz(func(t *testing.T, stat string) {
		if d, err := parseStatCPU([]byte(stat)); err == nil && d < 0 {
			t.Fatalf("parseStatCPU(%q) = %v", stat, d)
		}
	})
}
