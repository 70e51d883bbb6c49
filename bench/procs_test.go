package main

import (
	"os"
	"strings"
	"testing"
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
