package badgerstore

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// Key prefixes. Primary records live under a one-letter prefix; index entries
// (empty values) under a two-letter one. The separator between the parts of
// an index key is sep, a byte that validated IDs never contain.
const (
	prefixClient  = "c/"  // c/<clientID>
	prefixPending = "p/"  // p/<stateHash>
	prefixCode    = "a/"  // a/<codeHash>
	prefixGrant   = "g/"  // g/<grantID>
	prefixToken   = "t/"  // t/<tokenHash>
	prefixConsent = "n/"  // n/<userID> sep <clientID>
	prefixKV      = "k/"  // k/<plugin>/<key>
	prefixAudit   = "l/"  // l/<time:8><seq:8>
	prefixAuditID = "li/" // li/<auditID> -> <time:8><seq:8>

	prefixGrantByUser   = "gu/" // gu/<userID> sep <created:8><grantID>
	prefixGrantByEmail  = "ge/" // ge/<lower(email)> sep <created:8><grantID>
	prefixGrantByClient = "gc/" // gc/<clientID> sep <created:8><grantID>
	prefixTokenByGrant  = "tg/" // tg/<grantID> sep <tokenHash>

	keyAuditSequence = "s/audit" // Badger sequence behind audit IDs

	sep = "\x00"
)

// All primary-record prefixes, used by GarbageCollect.
var primaryPrefixes = []string{prefixClient, prefixPending, prefixCode, prefixGrant, prefixToken, prefixConsent, prefixKV, prefixAudit}

func key(parts ...string) []byte {
	return []byte(strings.Join(parts, ""))
}

// timeKey encodes t as 8 bytes that sort like the instants they encode
// (milliseconds since the Unix epoch with the sign bit flipped).
func timeKey(t time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixMilli())^(1<<63))
	return string(b[:])
}

func consentKey(userID, clientID string) []byte {
	return key(prefixConsent, userID, sep, clientID)
}

func kvKey(plugin, k string) []byte {
	return key(prefixKV, plugin, "/", k)
}

func grantByUserKey(userID string, created time.Time, id string) []byte {
	return key(prefixGrantByUser, userID, sep, timeKey(created), id)
}

func grantByEmailKey(email string, created time.Time, id string) []byte {
	return key(prefixGrantByEmail, strings.ToLower(email), sep, timeKey(created), id)
}

func grantByClientKey(clientID string, created time.Time, id string) []byte {
	return key(prefixGrantByClient, clientID, sep, timeKey(created), id)
}

func tokenByGrantKey(grantID, hash string) []byte {
	return key(prefixTokenByGrant, grantID, sep, hash)
}

// grantIndexKeys returns every index entry of g.
func grantIndexKeys(g store.Grant) [][]byte {
	keys := [][]byte{grantByUserKey(g.UserID, g.CreatedAt, g.ID), grantByClientKey(g.ClientID, g.CreatedAt, g.ID)}
	if g.Email != "" {
		keys = append(keys, grantByEmailKey(g.Email, g.CreatedAt, g.ID))
	}
	return keys
}

// ttl converts a record's ExpiresAt into a Badger entry expiry (Unix
// seconds, rounded up so Badger never drops a record early); zero stays zero.
func ttl(expiresAt time.Time) uint64 {
	if expiresAt.IsZero() {
		return 0
	}
	s := expiresAt.Unix()
	if expiresAt.Nanosecond() > 0 {
		s++
	}
	if s <= 0 {
		return 1 // already expired long ago; any past instant will do
	}
	return uint64(s)
}
