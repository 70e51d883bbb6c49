package badgerstore

import (
	"context"
	"sync"

	"github.com/toolgate/toolgate/core/store"
)

// maxQueued is how many changes may wait for a slow watcher before they are
// collapsed into one ChangeUnknown (drop every cached entry).
const maxQueued = 4096

// Watch calls fn, on a goroutine of the store, for every change committed
// after Watch returned, until ctx is done or the store is closed. Changes
// announced: ChangeGrantUpdated (UpdateGrant, RotateRefreshToken with an
// update), ChangeGrantRevoked (RevokeGrant, and every grant DeleteClient
// removes), ChangeTokenDeleted (DeleteToken) and ChangeClientDeleted
// (DeleteClient). When fn falls more than 4096 changes behind, the backlog
// is replaced by one ChangeUnknown.
func (s *Store) Watch(ctx context.Context, fn func(store.Change)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	w := &watcher{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	s.watch.add(w)
	go func() {
		defer close(w.exited)
		defer s.watch.remove(w)
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.done:
				return
			case <-w.wake:
			}
			for _, c := range w.take() {
				if ctx.Err() != nil {
					return
				}
				w.fn(c)
			}
		}
	}()
}

type watchers struct {
	mu   sync.Mutex
	list []*watcher
}

type watcher struct {
	fn     func(store.Change)
	wake   chan struct{} // a push happened
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when the goroutine returned
	mu     sync.Mutex
	queue  []store.Change
	closed bool
}

func (ws *watchers) add(w *watcher) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.list = append(ws.list, w)
}

func (ws *watchers) remove(w *watcher) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for i, x := range ws.list {
		if x == w {
			ws.list = append(ws.list[:i], ws.list[i+1:]...)
			return
		}
	}
}

func (ws *watchers) announce(changes []store.Change) {
	if len(changes) == 0 {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, w := range ws.list {
		w.push(changes)
	}
}

func (ws *watchers) closeAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, w := range ws.list {
		w.mu.Lock()
		if !w.closed {
			w.closed = true
			close(w.done)
		}
		w.mu.Unlock()
	}
}

func (w *watcher) push(changes []store.Change) {
	w.mu.Lock()
	switch {
	case len(w.queue) == 1 && w.queue[0].Kind == store.ChangeUnknown:
		// Everything is dropped anyway; later changes add nothing.
	case len(w.queue)+len(changes) > maxQueued:
		w.queue = append(w.queue[:0], store.Change{Kind: store.ChangeUnknown})
	default:
		w.queue = append(w.queue, changes...)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) take() []store.Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}
