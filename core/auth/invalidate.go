package auth

import "github.com/toolgate/toolgate/core/store"

// Invalidate drops the cached bearer tokens that a change committed to the
// store by another writer in this process made stale: every token of the
// grant for ChangeGrantRevoked and ChangeGrantUpdated, the token for
// ChangeTokenDeleted (ID is its hash), every token of the client for
// ChangeClientDeleted. Other kinds are ignored.
//
// The store's change feed (store.Watcher) delivers the same changes, but on
// its own goroutine, after the write returned. A writer that must have a
// revocation refuse the very next request, such as the admin handler
// (admin.Config.Invalidate), calls Invalidate before it answers.
func (s *Server) Invalidate(ch store.Change) {
	switch ch.Kind {
	case store.ChangeGrantRevoked, store.ChangeGrantUpdated:
		s.cache.dropGrant(ch.ID)
	case store.ChangeTokenDeleted:
		s.cache.drop(ch.ID)
	case store.ChangeClientDeleted:
		s.cache.dropClient(ch.ID)
	}
}
