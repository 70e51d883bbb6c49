// Package changefeed hands a store's changes to its watchers: the part of
// store.Store's Watch that every backend shares.
//
// A Feed keeps one queue and one goroutine per Watch. Announce queues
// changes for every watcher without blocking; each goroutine calls its fn
// with them in order. A watcher that falls more than 4096 changes behind
// has its backlog replaced by one store.ChangeUnknown (drop every
// cached entry), or one store.ChangeSuspended while the feed is suspended.
//
// A backend that learns of other processes' changes over a connection
// that can be lost calls Suspend when it is lost and Resume when it is
// back: watchers get store.ChangeSuspended, then store.ChangeUnknown. A
// backend that needs to know when the watchers have returned from the
// changes announced so far (not merely received them) takes a Mark and
// waits on it.
//
// The zero Feed is ready to use. It imports only the standard library and
// core/store.
package changefeed

import (
	"context"
	"sync"

	"github.com/toolgate/toolgate/core/store"
)

// maxQueued is how many changes may wait for a slow watcher before they
// are collapsed into one ChangeUnknown (or ChangeSuspended).
const maxQueued = 4096

// Feed fans changes out to every Watch of a store.
type Feed struct {
	mu        sync.Mutex
	list      []*watcher
	suspended bool
	closed    bool
}

type watcher struct {
	fn     func(store.Change)
	wake   chan struct{} // a push happened
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when the Watch goroutine has returned
	mu     sync.Mutex
	// queue holds changes not yet handed to fn.
	queue  []store.Change
	closed bool
	// pushed counts pushes; handled is the count of those whose changes
	// fn has returned from (a collapsed backlog counts as all of them).
	pushed, handled uint64
	// progress, made by a waiter, is closed when handled grows.
	progress chan struct{}
}

func newWatcher(fn func(store.Change)) *watcher {
	return &watcher{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
}

// Watch calls fn, on a goroutine of its own, for every change announced
// after Watch returned, until ctx is done or the feed is closed; after
// Close it does nothing. While the feed is suspended fn first gets
// ChangeSuspended.
func (f *Feed) Watch(ctx context.Context, fn func(store.Change)) {
	w := newWatcher(fn)
	if !f.add(w) {
		return
	}
	go w.run(ctx, f)
}

// run calls fn for the changes pushed to w until ctx is done or w is
// closed, then unregisters w.
func (w *watcher) run(ctx context.Context, f *Feed) {
	defer close(w.exited)
	defer f.remove(w)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.done:
			return
		case <-w.wake:
		}
		q, seq := w.take()
		for _, c := range q {
			if ctx.Err() != nil {
				return
			}
			w.fn(c)
		}
		w.handledUpTo(seq)
	}
}

// add registers w unless the feed is closed.
func (f *Feed) add(w *watcher) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	if f.suspended {
		w.push([]store.Change{{Kind: store.ChangeSuspended}}, true)
	}
	f.list = append(f.list, w)
	return true
}

func (f *Feed) remove(w *watcher) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.list {
		if x == w {
			f.list = append(f.list[:i], f.list[i+1:]...)
			return
		}
	}
}

// Announce queues changes for every watcher; it does not wait for them.
func (f *Feed) Announce(changes []store.Change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.list {
		w.push(changes, f.suspended)
	}
}

// Suspend tells every watcher, with ChangeSuspended, that changes may be
// missed from now on. It does nothing while suspended already.
func (f *Feed) Suspend() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.suspended {
		return
	}
	f.suspended = true
	for _, w := range f.list {
		w.push([]store.Change{{Kind: store.ChangeSuspended}}, true)
	}
}

// Resume tells every watcher, with ChangeUnknown, that changes flow again
// and that anything may have changed meanwhile.
func (f *Feed) Resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.suspended = false
	for _, w := range f.list {
		w.push([]store.Change{{Kind: store.ChangeUnknown}}, false)
	}
}

// Close ends every Watch: no fn is called once its current call returned,
// and later Watch calls do nothing. It does not wait for running calls.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, w := range f.list {
		w.mu.Lock()
		if !w.closed {
			w.closed = true
			close(w.done)
		}
		w.mu.Unlock()
	}
}

// push queues changes. suspended is the feed's state once they are
// applied: a backlog that grows too long collapses into the one change
// that leaves a cache in that state.
func (w *watcher) push(changes []store.Change, suspended bool) {
	state := false // changes hold a suspension or a resumption
	for _, c := range changes {
		if c.Kind == store.ChangeSuspended || c.Kind == store.ChangeUnknown {
			state = true
		}
	}
	w.mu.Lock()
	switch {
	case !state && len(w.queue) == 1 && (w.queue[0].Kind == store.ChangeUnknown || w.queue[0].Kind == store.ChangeSuspended):
		// Everything cached is dropped anyway; ordinary changes add nothing.
	case len(w.queue)+len(changes) > maxQueued:
		collapsed := store.Change{Kind: store.ChangeUnknown}
		if suspended {
			collapsed.Kind = store.ChangeSuspended
		}
		w.queue = append(w.queue[:0], collapsed)
	default:
		w.queue = append(w.queue, changes...)
	}
	w.pushed++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take empties the queue; seq is the count of pushes it holds, for
// handledUpTo once fn has returned from every change of it.
func (w *watcher) take() (q []store.Change, seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	q = w.queue
	w.queue = nil
	return q, w.pushed
}

// handledUpTo records that fn has returned from the changes of the first
// seq pushes.
func (w *watcher) handledUpTo(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq <= w.handled {
		return
	}
	w.handled = seq
	if w.progress != nil {
		close(w.progress)
		w.progress = nil
	}
}

// A Mark records how far each watcher of a Feed had been announced
// changes when it was taken. The zero Mark has no watchers.
type Mark struct {
	seqs []seq
}

// seq is how many pushes one watcher had received.
type seq struct {
	w *watcher
	n uint64
}

// Mark records, for every watcher, the changes announced to it so far.
func (f *Feed) Mark() Mark {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := Mark{seqs: make([]seq, len(f.list))}
	for i, w := range f.list {
		w.mu.Lock()
		m.seqs[i] = seq{w, w.pushed}
		w.mu.Unlock()
	}
	return m
}

// Wait waits until every watcher of m has returned from the changes
// announced to it before m was taken, or has stopped (it calls fn no
// more), or ctx is done; it reports whether all of them got there.
// Changes announced after m do not hold it up.
func (m Mark) Wait(ctx context.Context) bool {
	for _, s := range m.seqs {
		if !s.w.waitHandled(ctx, s.n) {
			return false
		}
	}
	return true
}

// waitHandled waits until fn has returned from the changes of the first n
// pushes, or the watcher has stopped (its goroutine returned), or ctx is
// done (false).
func (w *watcher) waitHandled(ctx context.Context, n uint64) bool {
	for {
		w.mu.Lock()
		if w.handled >= n {
			w.mu.Unlock()
			return true
		}
		if w.progress == nil {
			w.progress = make(chan struct{})
		}
		progress := w.progress
		w.mu.Unlock()
		select {
		case <-progress:
		case <-w.exited:
			return true
		case <-ctx.Done():
			return false
		}
	}
}
