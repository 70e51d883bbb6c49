package badgerstore

import (
	"context"

	"github.com/toolgate/toolgate/core/store"
)

// Watch calls fn, on a goroutine of the store, for every change committed
// after Watch returned, until ctx is done or the store is closed. Changes
// announced: ChangeGrantUpdated (UpdateGrant, RotateRefreshToken with an
// update), ChangeGrantRevoked (RevokeGrant, and every grant DeleteClient
// removes), ChangeTokenDeleted (DeleteToken) and ChangeClientDeleted
// (DeleteClient). When fn falls more than 4096 changes behind, the backlog
// is replaced by one ChangeUnknown.
func (s *Store) Watch(ctx context.Context, fn func(store.Change)) {
	s.watch.Watch(ctx, fn)
}
