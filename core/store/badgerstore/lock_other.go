//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package badgerstore

// dirLock is a no-op where flock(2) is missing; Badger's own directory lock
// still excludes a second process, and Open maps its error to ErrLocked.
type dirLock struct{}

func lockDir(string) (*dirLock, error) { return &dirLock{}, nil }

func (*dirLock) release() {}
