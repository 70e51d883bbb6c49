package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// batchAudit is a store.Audit and store.AuditBatcher that counts calls.
// While hold is open, its first call waits for it to be closed, after
// announcing itself on entered.
type batchAudit struct {
	entered chan struct{}
	hold    chan struct{}
	failAt  int // batch calls with this 1-based number fail; 0 never

	mu         sync.Mutex
	records    []store.AuditRecord
	batchCalls int
	batchSizes []int
	singles    int
	once       sync.Once
}

func newBatchAudit() *batchAudit {
	return &batchAudit{entered: make(chan struct{}), hold: make(chan struct{})}
}

func (a *batchAudit) wait() {
	a.once.Do(func() {
		close(a.entered)
		<-a.hold
	})
}

func (a *batchAudit) AppendAudit(_ context.Context, r store.AuditRecord) (store.AuditRecord, error) {
	a.wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.singles++
	r.ID = fmt.Sprintf("%08d", len(a.records))
	a.records = append(a.records, r)
	return r, nil
}

func (a *batchAudit) AppendAuditBatch(_ context.Context, rs []store.AuditRecord) ([]store.AuditRecord, error) {
	a.wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.batchCalls++
	a.batchSizes = append(a.batchSizes, len(rs))
	if a.batchCalls == a.failAt {
		return nil, errors.New("batch refused")
	}
	out := make([]store.AuditRecord, len(rs))
	for i, r := range rs {
		r.ID = fmt.Sprintf("%08d", len(a.records))
		a.records = append(a.records, r)
		out[i] = r
	}
	return out, nil
}

func (a *batchAudit) ListAudit(context.Context, store.AuditQuery) ([]store.AuditRecord, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]store.AuditRecord(nil), a.records...), nil
}

var _ store.AuditBatcher = (*batchAudit)(nil)

// TestAuditorBatches holds the store's first write while many goroutines
// record concurrently, then checks that the queued records arrive in
// batches of at most auditBatch, none lost and none twice.
func TestAuditorBatches(t *testing.T) {
	tests := []struct {
		name       string
		records    int
		failAt     int
		wantCalls  int // AppendAuditBatch calls
		wantSingle int // AppendAudit calls
	}{
		{"one", 1, 0, 1, 0},
		{"under a batch", 100, 0, 2, 0},
		{"several batches", 1000, 0, 1 + (999+auditBatch-1)/auditBatch, 0},
		{"failed batch falls back to single writes", 600, 2, 1 + (599+auditBatch-1)/auditBatch, auditBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newBatchAudit()
			st.failAt = tc.failAt
			a := newAuditor(st, time.Hour, slog.New(slog.DiscardHandler))
			rec := func(i int) store.AuditRecord {
				return store.AuditRecord{Time: time.Now(), UserID: "u", Tool: "tool-" + strconv.Itoa(i), Decision: "allow", Outcome: "ok"}
			}
			a.record(t.Context(), rec(0))
			if tc.records > 1 {
				<-st.entered // the writer is stuck on record 0; the rest queue up
				var wg sync.WaitGroup
				for i := 1; i < tc.records; i++ {
					wg.Go(func() { a.record(t.Context(), rec(i)) })
				}
				wg.Wait()
			}
			close(st.hold)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := a.close(ctx); err != nil {
				t.Fatalf("close: %v", err)
			}

			st.mu.Lock()
			defer st.mu.Unlock()
			if st.batchCalls != tc.wantCalls || st.singles != tc.wantSingle {
				t.Errorf("got %d batch calls (sizes %v) and %d single writes, want %d and %d",
					st.batchCalls, st.batchSizes, st.singles, tc.wantCalls, tc.wantSingle)
			}
			for _, n := range st.batchSizes {
				if n < 1 || n > auditBatch {
					t.Errorf("batch of %d records, want 1 to %d", n, auditBatch)
				}
			}
			seen := make(map[string]int)
			for _, r := range st.records {
				seen[r.Tool]++
				if want := r.Time.Add(time.Hour); !r.ExpiresAt.Equal(want) {
					t.Errorf("%s: ExpiresAt %v, want %v", r.Tool, r.ExpiresAt, want)
				}
			}
			for i := range tc.records {
				if n := seen["tool-"+strconv.Itoa(i)]; n != 1 {
					t.Errorf("record tool-%d stored %d times, want once", i, n)
				}
			}
			if len(st.records) != tc.records {
				t.Errorf("stored %d records, want %d", len(st.records), tc.records)
			}
		})
	}
}

// TestAuditorRecordAfterClose checks that a record that comes after close
// is written at once, in the caller, through AppendAudit.
func TestAuditorRecordAfterClose(t *testing.T) {
	st := newBatchAudit()
	close(st.hold)
	a := newAuditor(st, 0, slog.New(slog.DiscardHandler))
	if err := a.close(t.Context()); err != nil {
		t.Fatalf("close: %v", err)
	}
	a.record(t.Context(), store.AuditRecord{Tool: "late"})
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.singles != 1 || len(st.records) != 1 || st.records[0].Tool != "late" {
		t.Fatalf("after close: %d single writes, records %+v; want the late record written once", st.singles, st.records)
	}
}
