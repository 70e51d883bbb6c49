package changefeed

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// wait is the generous deadline for anything another goroutine must do.
const wait = 10 * time.Second

// recorder is a Watch callback that passes every change on a channel.
type recorder chan store.Change

func (r recorder) fn(c store.Change) { r <- c }

// next returns the next change fn got.
func (r recorder) next(t *testing.T, what string) store.Change {
	t.Helper()
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	select {
	case c := <-r:
		return c
	case <-timeout.C:
		t.Fatalf("%s: no change within %v", what, wait)
		return store.Change{}
	}
}

func waitClosed(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	select {
	case <-c:
	case <-timeout.C:
		t.Fatalf("%s did not end within %v", what, wait)
	}
}

// watchers returns the watchers registered with f.
func watchers(f *Feed) []*watcher {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*watcher(nil), f.list...)
}

func grant(id string) store.Change { return store.Change{Kind: store.ChangeGrantUpdated, ID: id} }

// fn gets the changes in the order announced, suspensions and
// resumptions included; a second Suspend adds nothing. (An ordinary change
// queued behind a ChangeSuspended or ChangeUnknown may be dropped: the
// cache is emptied anyway.)
func TestOrder(t *testing.T) {
	var f Feed
	defer f.Close()
	r := make(recorder, 16)
	f.Watch(t.Context(), r.fn)
	f.Announce(nil) // nothing to tell
	f.Announce([]store.Change{grant("a"), grant("b")})
	f.Suspend()
	f.Suspend()
	f.Resume()
	want := []store.Change{grant("a"), grant("b"), {Kind: store.ChangeSuspended}, {Kind: store.ChangeUnknown}}
	for i, w := range want {
		if got := r.next(t, "change "+strconv.Itoa(i)); got != w {
			t.Fatalf("change %d = %v, want %v", i, got, w)
		}
	}
	// fn has taken everything queued: a new change is delivered.
	f.Announce([]store.Change{grant("c")})
	if got := r.next(t, "a change after resuming"); got != grant("c") {
		t.Fatalf("got %v, want %v", got, grant("c"))
	}
	select {
	case c := <-r:
		t.Fatalf("unexpected change %v", c)
	default:
	}
}

// A Watch that starts while the feed is suspended learns it at once.
func TestWatchStartsSuspended(t *testing.T) {
	var f Feed
	f.Suspend()
	w := newWatcher(nil)
	if !f.add(w) {
		t.Fatal("add refused a watcher of an open feed")
	}
	if q, _ := w.take(); len(q) != 1 || q[0].Kind != store.ChangeSuspended {
		t.Fatalf("queue of a watcher added while suspended = %v, want [ChangeSuspended]", q)
	}
	f.Resume()
	if q, _ := w.take(); len(q) != 1 || q[0].Kind != store.ChangeUnknown {
		t.Fatalf("queue after resume = %v, want [ChangeUnknown]", q)
	}

	// The same through Watch.
	r := make(recorder, 4)
	f.Suspend()
	f.Watch(t.Context(), r.fn)
	defer f.Close()
	if got := r.next(t, "a Watch started while suspended"); got.Kind != store.ChangeSuspended {
		t.Fatalf("first change = %v, want ChangeSuspended", got)
	}
}

// A backlog of ordinary changes too long collapses into one ChangeUnknown,
// and later ordinary changes add nothing to it.
func TestBacklogCollapses(t *testing.T) {
	w := newWatcher(nil)
	batch := make([]store.Change, 1000)
	for i := range batch {
		batch[i] = store.Change{Kind: store.ChangeTokenDeleted, ID: strconv.Itoa(i)}
	}
	for range maxQueued / len(batch) {
		w.push(batch, false)
	}
	if got, _ := w.take(); len(got) != maxQueued/len(batch)*len(batch) || got[0].Kind != store.ChangeTokenDeleted {
		t.Fatalf("queue of %d changes, want them all", len(got))
	}
	for range maxQueued/len(batch) + 1 {
		w.push(batch, false)
	}
	w.push(batch, false) // after collapsing, more changes add nothing
	if got, _ := w.take(); !reflect.DeepEqual(got, []store.Change{{Kind: store.ChangeUnknown}}) {
		t.Fatalf("an overflowing queue holds %d changes, want one ChangeUnknown", len(got))
	}
}

// A backlog too long collapses into the change that leaves a cache in the
// feed's state: ChangeSuspended while suspended, else ChangeUnknown; a
// suspension or resumption is still queued behind it.
func TestBacklogCollapsesToState(t *testing.T) {
	for _, suspended := range []bool{false, true} {
		w := newWatcher(nil)
		ch := grant("g")
		if suspended {
			w.push([]store.Change{{Kind: store.ChangeSuspended}}, true)
		}
		for range maxQueued + 1 {
			w.push([]store.Change{ch}, suspended)
		}
		want := store.ChangeUnknown
		if suspended {
			want = store.ChangeSuspended
		}
		if q, _ := w.take(); len(q) != 1 || q[0].Kind != want {
			t.Errorf("suspended=%v: backlog collapsed to %v, want [%s]", suspended, q, want)
		}
		w.push([]store.Change{{Kind: store.ChangeSuspended}}, true)
		w.push([]store.Change{ch}, true)
		w.push([]store.Change{{Kind: store.ChangeUnknown}}, false)
		if q, _ := w.take(); len(q) != 2 || q[0].Kind != store.ChangeSuspended || q[1].Kind != store.ChangeUnknown {
			t.Errorf("suspended=%v: queue %v, want [ChangeSuspended ChangeUnknown]", suspended, q)
		}
	}
}

// Wait waits for a watcher to return from its callbacks, not merely to
// have them queued or taken.
func TestWaitForCallbacks(t *testing.T) {
	var f Feed
	w := newWatcher(nil)
	f.add(w)
	w.push([]store.Change{{Kind: store.ChangeGrantRevoked, ID: "g"}}, false)
	mark := f.Mark()
	expired, cancel := context.WithCancel(t.Context())
	cancel()
	if mark.Wait(expired) {
		t.Fatal("Wait reported a queued but unhandled change as handled")
	}
	q, seq := w.take()
	if len(q) != 1 {
		t.Fatalf("queue %v", q)
	}
	if mark.Wait(expired) {
		t.Fatal("Wait reported a change taken but not yet returned from as handled")
	}
	done := make(chan bool)
	go func() { done <- mark.Wait(t.Context()) }()
	w.handledUpTo(seq)
	if !<-done {
		t.Fatal("Wait did not see the change handled")
	}
	// Later pushes do not hold up a mark taken before them.
	w.push([]store.Change{{Kind: store.ChangeGrantRevoked, ID: "h"}}, false)
	if !mark.Wait(expired) {
		t.Fatal("Wait waited for a change pushed after its mark")
	}
	// A watcher that stopped counts as done.
	later := f.Mark()
	close(w.exited)
	if !later.Wait(t.Context()) {
		t.Fatal("Wait waited for a stopped watcher")
	}
	// A feed without watchers has nothing to wait for.
	var empty Feed
	if !empty.Mark().Wait(expired) {
		t.Fatal("Wait of a feed without watchers failed")
	}
}

// The same through Watch: a Mark taken after an announcement is reached
// only once fn has returned from the change.
func TestWaitForRunningCallback(t *testing.T) {
	var f Feed
	defer f.Close()
	entered, release := make(chan store.Change, 1), make(chan struct{})
	f.Watch(t.Context(), func(c store.Change) {
		entered <- c
		<-release
	})
	f.Announce([]store.Change{grant("g")})
	mark := f.Mark()
	if got := recorder(entered).next(t, "the callback"); got != grant("g") {
		t.Fatalf("fn got %v", got)
	}
	expired, cancel := context.WithCancel(t.Context())
	cancel()
	if mark.Wait(expired) {
		t.Fatal("Wait reported a change handled while fn was still running")
	}
	close(release)
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if !mark.Wait(ctx) {
		t.Fatalf("Wait did not return within %v of fn returning", wait)
	}
}

// A Watch ends, and unregisters, when its context is done or the feed is
// closed; after Close, Watch does nothing.
func TestWatchEnds(t *testing.T) {
	var f Feed
	ctx, cancel := context.WithCancel(t.Context())
	f.Watch(ctx, func(store.Change) {})
	f.Watch(t.Context(), func(store.Change) {})
	ws := watchers(&f)
	if len(ws) != 2 {
		t.Fatalf("%d watchers registered, want 2", len(ws))
	}
	byCtx, byClose := ws[0], ws[1]

	cancel()
	waitClosed(t, "the watcher whose context ended", byCtx.exited)
	f.Close()
	f.Close() // a no-op
	waitClosed(t, "the watcher of a closed feed", byClose.exited)
	if n := len(watchers(&f)); n != 0 {
		t.Fatalf("%d watchers still registered", n)
	}
	f.Watch(t.Context(), func(store.Change) { t.Error("called after Close") })
	if n := len(watchers(&f)); n != 0 {
		t.Fatalf("Watch after Close registered a watcher (%d)", n)
	}
	f.Announce([]store.Change{grant("g")})
}

// A Watch whose context ends while changes are queued calls fn with none
// of the rest.
func TestWatchStopsMidBacklog(t *testing.T) {
	var f Feed
	defer f.Close()
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan store.Change, 4)
	f.Watch(ctx, func(c store.Change) {
		got <- c
		cancel()
	})
	ws := watchers(&f)
	if len(ws) != 1 {
		t.Fatalf("%d watchers registered, want 1", len(ws))
	}
	f.Announce([]store.Change{grant("a"), grant("b"), grant("c")})
	waitClosed(t, "the watcher whose context ended", ws[0].exited)
	if len(got) != 1 {
		t.Fatalf("fn was called %d times after its context ended in the first call, want 1", len(got))
	}
}
