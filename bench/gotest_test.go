package main

import (
	"reflect"
	"testing"
)

func TestParseBenchOutput(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/toolgate/toolgate/core/plugin
cpu: Intel(R) Xeon(R) Processor
BenchmarkVerifyBearerCached   	 5000000	       231.4 ns/op
BenchmarkCall/native-2        	 1000000	      1043 ns/op	         1.000 p50-µs	         2.000 p99-µs
BenchmarkCall/pool-plugins-add-2         	   50000	     21016 ns/op	        19.50 p50-µs	        45.20 p99-µs	    1234 B/op	      12 allocs/op
BenchmarkBroken-2   notanumber   1 ns/op
BenchmarkOdd-2   10   1 ns/op  2
--- FAIL: BenchmarkX
PASS
ok  	github.com/toolgate/toolgate/core/plugin	12.3s
`
	got := parseBenchOutput(out)
	want := []benchLine{
		{name: "VerifyBearerCached", metrics: map[string]float64{"ns/op": 231.4}},
		{name: "Call/native", metrics: map[string]float64{"ns/op": 1043, "p50-µs": 1, "p99-µs": 2}},
		{name: "Call/pool-plugins-add", metrics: map[string]float64{"ns/op": 21016, "p50-µs": 19.5, "p99-µs": 45.2, "B/op": 1234, "allocs/op": 12}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseBenchOutput = %+v\nwant %+v", got, want)
	}
}

// FuzzParseBenchOutput: any output parses without panicking, into lines
// with a name and at least one metric.
func FuzzParseBenchOutput(f *testing.F) {
	f.Add("BenchmarkA-2 10 5 ns/op\n")
	f.Add("BenchmarkCall/native-2 1 1 ns/op 1 p50-µs 2 p99-µs\nok\n")
	f.Add("Benchmark- 1 x y\n")
	f.Fuzz(func(t *testing.T, out string) {
		for _, l := range parseBenchOutput(out) {
			if l.name == "" || len(l.metrics) == 0 {
				t.Fatalf("line %+v without a name or metrics", l)
			}
		}
	})
}
