package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// system is one MCP server under load.
type system struct {
	name  string // floor, toolgate or peer
	url   string // the MCP endpoint
	token string // bearer token; empty for none
	pid   int    // the server process, for its resident memory and CPU time
}

// run is what one load run at one concurrency measured.
type run struct {
	ok       int             // verified answers
	errs     int             // failed requests and wrong answers
	firstErr error           // the first failure, for the report
	elapsed  time.Duration   // measured wall time
	lat      []time.Duration // latency of every verified answer
	peakRSS  int64           // the server's largest VmRSS seen, in bytes
	cpu      time.Duration   // the server's CPU time during the measured run
}

// throughput is verified answers per second.
func (r run) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// newLoadClient is an HTTP client keeping up to conns connections alive
// to one server.
func newLoadClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}}
}

// load drives tools/call add on s from conc workers, each waiting for its
// answer before the next request, for warmup (not measured) and then for
// dur. Every answer is checked; ids come from seq so that each request
// asks for a different sum.
func load(ctx context.Context, client *http.Client, s system, conc int, warmup, dur time.Duration, seq *atomic.Int64) run {
	if warmup > 0 {
		phase(ctx, client, s, conc, warmup, seq, false)
	}
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var max int64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := rss(s.pid); err == nil && v > max {
				max = v
			}
			select {
			case <-stop:
				peak <- max
				return
			case <-t.C:
			}
		}
	}()
	cpu0, err0 := cpuTime(s.pid)
	r := phase(ctx, client, s, conc, dur, seq, true)
	cpu1, err1 := cpuTime(s.pid)
	close(stop)
	r.peakRSS = <-peak
	if err0 == nil && err1 == nil {
		r.cpu = cpu1 - cpu0
	}
	return r
}

// phase runs conc workers for d; with measure it records latencies.
func phase(ctx context.Context, client *http.Client, s system, conc int, d time.Duration, seq *atomic.Int64, measure bool) run {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second) // a hung server fails the run, it does not hang it
	defer cancel()
	var (
		mu  sync.Mutex
		out run
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conc {
		wg.Go(func() {
			var lat []time.Duration
			ok, errs := 0, 0
			var first error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				id := seq.Add(1)
				a, b := id%100000, id%977
				t0 := time.Now()
				err := call(ctx, client, s, id, a, b)
				took := time.Since(t0)
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				ok++
				if measure {
					lat = append(lat, took)
				}
			}
			mu.Lock()
			out.ok += ok
			out.errs += errs
			if out.firstErr == nil {
				out.firstErr = first
			}
			out.lat = append(out.lat, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	if ctx.Err() != nil && out.firstErr == nil {
		out.firstErr = errors.New("the run timed out")
	}
	return out
}

// call sends one add request and checks the answer.
func call(ctx context.Context, client *http.Client, s system, id, a, b int64) error {
	req, err := newMCPRequest(ctx, s.url, s.token, addBody(id, a, b))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return checkAdd(resp, id, a, b)
}

// percentile returns the p-th percentile (0 < p ≤ 100, nearest rank) of
// sorted; zero when sorted is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// stats is the summary of one system at one concurrency over all rounds.
type stats struct {
	throughput    float64 // median over rounds, answers per second
	p50, p90, p99 time.Duration
	ok, errs      int
	firstErr      error
	peakRSS       int64
	cpuPerCall    time.Duration // the server's CPU time per verified answer
}

// summarize merges the rounds of one system at one concurrency: the
// median round's throughput and percentiles over every latency.
func summarize(runs []run) stats {
	var s stats
	var lat []time.Duration
	var tps []float64
	var cpu time.Duration
	for _, r := range runs {
		cpu += r.cpu
		s.ok += r.ok
		s.errs += r.errs
		if s.firstErr == nil {
			s.firstErr = r.firstErr
		}
		s.peakRSS = max(s.peakRSS, r.peakRSS)
		lat = append(lat, r.lat...)
		tps = append(tps, r.throughput())
	}
	slices.Sort(lat)
	s.p50, s.p90, s.p99 = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99)
	s.throughput = median(tps)
	if s.ok > 0 {
		s.cpuPerCall = cpu / time.Duration(s.ok)
	}
	return s
}

// median of xs (the mean of the middle two for an even count); zero for
// none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
