package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p90 of 100", ms(hundred...), 90, 90 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 10 is the largest", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Fatalf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	boom := errors.New("boom")
	runs := []run{
		{ok: 100, elapsed: time.Second, lat: []time.Duration{3, 1}, peakRSS: 10, cpu: 500 * time.Millisecond},
		{ok: 300, errs: 2, firstErr: boom, elapsed: time.Second, lat: []time.Duration{2}, peakRSS: 30},
		{ok: 400, elapsed: 2 * time.Second, lat: []time.Duration{4}, peakRSS: 20, cpu: 300 * time.Millisecond},
	}
	s := summarize(runs)
	if s.throughput != 200 { // rounds of 100, 300 and 200 per second
		t.Errorf("throughput = %v, want the median round's 200", s.throughput)
	}
	if s.ok != 800 || s.errs != 2 || !errors.Is(s.firstErr, boom) || s.peakRSS != 30 {
		t.Errorf("summary = %+v, want 800 ok, 2 errors (boom), peak 30", s)
	}
	if s.cpuPerCall != time.Millisecond {
		t.Errorf("CPU per call = %v, want 800 ms over 800 answers", s.cpuPerCall)
	}
	if s.p50 != 2 || s.p99 != 4 {
		t.Errorf("p50, p99 = %v, %v, want 2, 4 over every latency", s.p50, s.p99)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestLoadFloor drives the floor (a real go-sdk server) with the load
// generator: every answer is checked, so a broken request shape or parser
// shows up as errors.
func TestLoadFloor(t *testing.T) {
	srv := httptest.NewServer(floorHandler())
	defer srv.Close()
	client := newLoadClient(4)
	defer client.CloseIdleConnections()
	var seq atomic.Int64
	r := load(t.Context(), client, system{name: "floor", url: srv.URL}, 4, 50*time.Millisecond, 200*time.Millisecond, &seq)
	if r.errs != 0 || r.ok == 0 {
		t.Fatalf("load: %d ok, %d errors (first: %v), want only verified answers", r.ok, r.errs, r.firstErr)
	}
	if len(r.lat) != r.ok || r.throughput() <= 0 {
		t.Fatalf("load: %d latencies for %d answers, throughput %v", len(r.lat), r.ok, r.throughput())
	}
}

// TestLoadCountsErrors points the load at a server answering the wrong
// sum: every call is an error.
func TestLoadCountsErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID int64 `json:"id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"-1"}]}}`, req.ID)
	}))
	defer srv.Close()
	client := newLoadClient(2)
	defer client.CloseIdleConnections()
	var seq atomic.Int64
	r := load(t.Context(), client, system{name: "wrong", url: srv.URL}, 2, 0, 100*time.Millisecond, &seq)
	if r.ok != 0 || r.errs == 0 || r.firstErr == nil {
		t.Fatalf("load against a server answering -1: %d ok, %d errors, want only errors", r.ok, r.errs)
	}
}
