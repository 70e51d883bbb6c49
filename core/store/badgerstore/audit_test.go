package badgerstore

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/toolgate/toolgate/core/store"
)

// TestAppendAuditBatchSplitsTooBigBatch appends a batch that Badger cannot
// take in one transaction with the smallest memtable, and checks that every
// record is stored, in order.
func TestAppendAuditBatchSplitsTooBigBatch(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir(), MemTableSize: minMemTableSize, GCInterval: -1})
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Millisecond)
	rs := make([]store.AuditRecord, 4000)
	for i := range rs {
		rs[i] = store.AuditRecord{Time: at, UserID: "u", Tool: "tool-" + strconv.Itoa(i), Decision: "allow", Outcome: "ok"}
	}

	// The batch really is too big for one transaction.
	es, err := s.prepareAudit(ctx, "test", rs)
	if err != nil {
		t.Fatal(err)
	}
	err = s.update(ctx, "test", func(txn *badger.Txn) ([]store.Change, error) {
		for _, e := range es {
			if err := putAudit(txn, e); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if !errors.Is(err, badger.ErrTxnTooBig) {
		t.Fatalf("one transaction for %d records: got %v, want ErrTxnTooBig", len(es), err)
	}

	got, err := s.AppendAuditBatch(ctx, rs)
	if err != nil {
		t.Fatalf("AppendAuditBatch: %v", err)
	}
	if len(got) != len(rs) {
		t.Fatalf("AppendAuditBatch returned %d records, want %d", len(got), len(rs))
	}
	var ids []string
	for i, r := range got {
		if r.Tool != rs[i].Tool {
			t.Fatalf("record %d: tool %q, want %q", i, r.Tool, rs[i].Tool)
		}
		if i > 0 && r.ID <= got[i-1].ID {
			t.Fatalf("record %d: ID %q does not follow %q", i, r.ID, got[i-1].ID)
		}
		ids = append(ids, r.ID)
	}
	list, err := s.ListAudit(ctx, store.AuditQuery{Limit: len(rs) + 1})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	var listed []string
	for _, r := range list {
		listed = append(listed, r.ID)
	}
	slices.Reverse(ids)
	if !slices.Equal(listed, ids) {
		t.Fatalf("ListAudit returned %d records not in reverse append order (want %d)", len(listed), len(ids))
	}
}

// TestAppendAuditBatchErrors checks the failures that leave nothing stored.
func TestAppendAuditBatchErrors(t *testing.T) {
	tests := []struct {
		name string
		rs   []store.AuditRecord
		want error
	}{
		{"invalid id", []store.AuditRecord{{Tool: "a"}, {ID: "bad\x00id", Tool: "b"}}, store.ErrInvalid},
		{"id twice", []store.AuditRecord{{ID: "x", Tool: "a"}, {ID: "x", Tool: "b"}}, store.ErrAlreadyExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, Options{Dir: t.TempDir(), GCInterval: -1})
			got, err := s.AppendAuditBatch(t.Context(), tc.rs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("AppendAuditBatch: got %v, want %v", err, tc.want)
			}
			if len(got) != 0 {
				t.Fatalf("AppendAuditBatch returned %d records with its error", len(got))
			}
			if keys := rawKeys(t, s, prefixAudit, prefixAuditID); len(keys) != 0 {
				t.Fatalf("failed batch left keys %q", keys)
			}
		})
	}
	t.Run("closed", func(t *testing.T) {
		s, err := Open(t.Context(), Options{Dir: t.TempDir(), GCInterval: -1, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendAuditBatch(t.Context(), []store.AuditRecord{{Tool: "a"}}); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("AppendAuditBatch after Close: got %v, want ErrClosed", err)
		}
	})
}
