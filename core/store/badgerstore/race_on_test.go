//go:build race

package badgerstore

// raceEnabled: the race detector multiplies memory use, so memory limits
// are only logged, not enforced, under it.
const raceEnabled = true
