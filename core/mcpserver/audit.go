package mcpserver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/toolgate/toolgate/core/internal/metricsreg"

	"github.com/toolgate/toolgate/core/store"
)

// auditQueue is how many records may wait for the store. When it is full
// the caller writes its record itself, so a slow store slows calls down
// instead of losing records.
const auditQueue = 4096

// auditBatch is the most records the background writer hands a store that
// implements store.AuditBatcher in one call, so in one commit.
const auditBatch = 256

// auditWriteTimeout bounds one store write, of one record or one batch.
const auditWriteTimeout = 5 * time.Second

// auditor logs every record and stores it in the background.
type auditor struct {
	store     store.Audit
	retention time.Duration
	log       *slog.Logger

	mu     sync.RWMutex // held for reading while queueing; for writing to close
	closed bool
	queue  chan store.AuditRecord
	done   chan struct{}
}

func newAuditor(st store.Audit, retention time.Duration, log *slog.Logger) *auditor {
	a := &auditor{store: st, retention: retention, log: log, done: make(chan struct{})}
	if st == nil {
		close(a.done)
		return a
	}
	a.queue = make(chan store.AuditRecord, auditQueue)
	go a.run()
	return a
}

// record logs r and queues it for the store. ctx only carries the
// request's values for the log line; the write does not depend on it.
func (a *auditor) record(ctx context.Context, r store.AuditRecord) {
	if a.retention > 0 {
		r.ExpiresAt = r.Time.Add(a.retention)
	}
	level := slog.LevelInfo
	if r.Decision == "deny" {
		level = slog.LevelWarn
	}
	a.log.LogAttrs(ctx, level, "tool call",
		slog.String("user", r.UserID),
		slog.String("org", r.OrganizationID),
		slog.String("client", r.ClientID),
		slog.String("plugin", r.Plugin),
		slog.String("tool", r.Tool),
		slog.String("decision", r.Decision),
		slog.String("outcome", r.Outcome),
		slog.String("error_kind", r.ErrorKind),
		slog.Duration("duration", r.Duration),
	)
	if a.store == nil {
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.write(r)
		return
	}
	select {
	case a.queue <- r:
	default:
		a.write(r)
	}
}

// run stores queued records until the queue is closed and empty. A store
// that implements store.AuditBatcher gets everything queued, up to
// auditBatch records, in one call, so one commit serves many tool calls.
func (a *auditor) run() {
	defer close(a.done)
	b, ok := a.store.(store.AuditBatcher)
	if !ok {
		for r := range a.queue {
			a.write(r)
		}
		return
	}
	batch := make([]store.AuditRecord, 0, auditBatch)
	for r := range a.queue {
		batch = append(batch[:0], r)
	drain:
		for len(batch) < auditBatch {
			select {
			case r, ok := <-a.queue:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		a.writeBatch(b, batch)
	}
}

// writeBatch stores rs in one call. If that fails, the records the store
// did not report stored are written one by one, so one bad record or a
// batch the store refuses costs no other record.
func (a *auditor) writeBatch(b store.AuditBatcher, rs []store.AuditRecord) {
	ctx, cancel := context.WithTimeout(context.Background(), auditWriteTimeout)
	stored, err := b.AppendAuditBatch(ctx, rs)
	cancel()
	if err == nil {
		return
	}
	rest := rs[min(len(stored), len(rs)):]
	a.log.Warn("mcpserver: audit batch not stored, storing its records one by one", "records", len(rest), "err", err)
	for _, r := range rest {
		a.write(r)
	}
}

func (a *auditor) write(r store.AuditRecord) {
	ctx, cancel := context.WithTimeout(context.Background(), auditWriteTimeout)
	defer cancel()
	if _, err := a.store.AppendAudit(ctx, r); err != nil {
		a.log.Error("mcpserver: audit record not stored", "tool", r.Tool, "user", r.UserID, "err", err)
	}
}

// close stores the queued records; if ctx ends first, the rest are stored
// in the background and close reports it.
func (a *auditor) close(ctx context.Context) error {
	a.mu.Lock()
	if !a.closed && a.queue != nil {
		a.closed = true
		close(a.queue)
	}
	a.mu.Unlock()
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mcpserver: flushing audit records: %w", ctx.Err())
	}
}

// metrics are the MCP layer's Prometheus collectors, per tool and outcome.
type metrics struct {
	calls       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	listChanged *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "toolgate", Subsystem: "mcp", Name: "tool_calls_total",
			Help: "tools/call requests by tool and outcome (ok, tool_error, denied, or a plugin error kind).",
		}, []string{"tool", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "toolgate", Subsystem: "mcp", Name: "tool_call_duration_seconds",
			Help:    "Time from the gate's check to the result, by tool and outcome.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tool", "outcome"}),
		listChanged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "toolgate", Subsystem: "mcp", Name: "list_changed_notifications_total",
			Help: "notifications/tools/list_changed to sessions: sent, or suppressed because the session's view did not change.",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.calls = metricsreg.Register(reg, m.calls, &err)
	m.duration = metricsreg.Register(reg, m.duration, &err)
	m.listChanged = metricsreg.Register(reg, m.listChanged, &err)
	return m, err
}

func (m *metrics) observe(tool, outcome string, d time.Duration) {
	m.calls.WithLabelValues(tool, outcome).Inc()
	m.duration.WithLabelValues(tool, outcome).Observe(d.Seconds())
}
