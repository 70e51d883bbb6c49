// Package store is toolgate's storage contract: the records the server keeps
// (registered clients, pending authorizations, authorization codes, grants,
// access and refresh tokens, consents, per-plugin key/value data and audit
// records), the interface every backend implements, and the sentinel errors
// callers test with errors.Is.
//
// The package imports only the standard library. Backends live in
// subpackages (badgerstore for one machine; a PostgreSQL one for several
// replicas) and all of them pass the shared conformance suite in storetest.
//
// # Conventions
//
//   - Records are plain value types. A backend never hands out a pointer into
//     its own state, and never keeps a pointer it was given.
//   - Secrets are never stored in the clear: tokens, codes and client secrets
//     are looked up by a hash the caller computes (see HashSecret). Fields
//     named *Hash hold such hashes.
//   - Every record with an ExpiresAt is invisible once that instant has passed:
//     Get, List and the consuming operations treat it as absent (ErrNotFound),
//     whether or not the backend has physically removed it yet. A zero
//     ExpiresAt means the record does not expire.
//   - Times are stored with at least millisecond precision and returned in UTC.
//   - Update functions receive a copy of the current record and may be called
//     more than once (a backend retries on a write conflict), so they must not
//     have side effects beyond editing the record. Returning an error aborts
//     the update, leaves the record unchanged and is returned wrapped.
//   - Operations named Consume..., Exchange... and Rotate... are single-use:
//     under any number of concurrent callers exactly one succeeds, and the
//     rest get ErrAlreadyUsed (with the record, so the caller can react, for
//     example by revoking the grant a replayed code belonged to).
//   - A method that returns nil has made its change durable: it survives a
//     crash of the process immediately afterwards.
package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Backends wrap them with context; test with errors.Is.
var (
	// ErrNotFound: no live record with that key (never existed, deleted or expired).
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists: a Create collided with a live record with the same key.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrAlreadyUsed: a single-use record (authorization code, pending
	// authorization, refresh token) was presented again after it was consumed.
	ErrAlreadyUsed = errors.New("store: already used")
	// ErrInvalid: the caller passed a record or key that breaks the contract
	// (empty key, oversized key, key with a forbidden character, ...).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrClosed: the store was used after Close.
	ErrClosed = errors.New("store: closed")
)

// Store is the whole storage contract. Implementations are safe for
// concurrent use by many goroutines.
type Store interface {
	Clients
	PendingAuthorizations
	AuthCodes
	Grants
	Tokens
	Consents
	PluginKV
	Audit

	// GarbageCollect removes expired records and reclaims space. It is safe
	// to call at any time; backends also run it periodically on their own.
	// now is passed in so tests can reason about what counts as expired.
	GarbageCollect(ctx context.Context, now time.Time) error
	// Ping reports whether the store is open and usable (used by /readyz).
	Ping(ctx context.Context) error
	// Close flushes and releases the store. Using it afterwards returns ErrClosed.
	Close() error
}

// Watcher is implemented by backends that announce changes which in-memory
// caches (the bearer-token cache above all) must not miss. Badger announces
// within its own process; a shared backend announces to every replica.
type Watcher interface {
	// Watch calls fn for every change committed after Watch returned, until
	// ctx is done. fn runs on the store's goroutine and must not block, nor
	// make changes through the store: a shared backend's operations may wait
	// for every replica's fn to have returned from their changes.
	// When the backend may have missed changes, it calls fn with a Change
	// of kind ChangeUnknown: drop every cached entry. A backend that learns
	// of changes over a connection that can drop (a shared one) calls fn
	// with ChangeSuspended the moment it is lost, and with ChangeUnknown
	// once changes flow again: in between, nothing may be served from a
	// cache that announcements keep fresh.
	Watch(ctx context.Context, fn func(Change))
}

// ChangeKind names what changed.
type ChangeKind string

const (
	ChangeGrantUpdated  ChangeKind = "grant_updated"  // ID is the grant ID
	ChangeGrantRevoked  ChangeKind = "grant_revoked"  // ID is the grant ID
	ChangeTokenDeleted  ChangeKind = "token_deleted"  // ID is the token hash
	ChangeClientDeleted ChangeKind = "client_deleted" // ID is the client ID
	ChangeUnknown       ChangeKind = "unknown"        // anything may have changed: drop every cached entry
	// ChangeSuspended: announcements may be missed from now on. Drop every
	// cached entry and cache nothing until the next ChangeUnknown.
	ChangeSuspended ChangeKind = "suspended"
)

// Change is one announcement from a Watcher.
type Change struct {
	Kind ChangeKind
	ID   string
}

// Clients holds the OAuth clients registered with us (RFC 7591). Clients that
// identify themselves with a metadata document URL (CIMD) are not stored here.
type Clients interface {
	// CreateClient stores a new client. ErrAlreadyExists if the ID is taken.
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	// UpdateClient applies fn to the stored client atomically.
	UpdateClient(ctx context.Context, id string, fn func(*Client) error) (Client, error)
	// DeleteClient removes the client and, atomically with it, every grant
	// issued to it and every token of those grants.
	DeleteClient(ctx context.Context, id string) error
	// ListClients returns every live client, ordered by ID.
	ListClients(ctx context.Context) ([]Client, error)
}

// PendingAuthorizations holds the state of an /authorize request while the
// user is away at the upstream login. The key is the hash of the random
// `state` we sent upstream.
type PendingAuthorizations interface {
	CreatePendingAuthorization(ctx context.Context, p PendingAuthorization) error
	// ConsumePendingAuthorization returns the record and marks it used;
	// a second call returns the record and ErrAlreadyUsed.
	ConsumePendingAuthorization(ctx context.Context, stateHash string) (PendingAuthorization, error)
}

// AuthCodes holds our authorization codes, keyed by the code's hash.
type AuthCodes interface {
	CreateAuthCode(ctx context.Context, c AuthCode) error
	// ExchangeAuthCode consumes the code and stores the tokens issued for it
	// in one atomic step: either the code is marked used and every token is
	// stored, or nothing changes. A code that was already exchanged returns
	// the code record and ErrAlreadyUsed and stores nothing.
	//
	// A non-zero grantExpiresAt extends the code's grant in the same atomic
	// step: the grant's ExpiresAt is set to grantExpiresAt if that is later
	// (a grant with a zero ExpiresAt never expires and is left so). The
	// grant must then be live (ErrNotFound otherwise, and nothing changes).
	// This lets a caller create a grant that lives only as long as its
	// code and becomes a full grant only when the code is exchanged. The
	// extension is not announced to Watchers: it changes only the expiry,
	// and a grant whose code was not yet exchanged has no tokens that a
	// cache could hold. A zero grantExpiresAt leaves the grant alone.
	ExchangeAuthCode(ctx context.Context, codeHash string, issue []Token, grantExpiresAt time.Time) (AuthCode, error)
}

// Grants are what a user approved for a client: the identity AuthKit
// vouched for and the upstream session behind it.
type Grants interface {
	// CreateGrant stores a new grant. ErrAlreadyExists if the ID is taken,
	// ErrNotFound if its client does not exist.
	CreateGrant(ctx context.Context, g Grant) error
	GetGrant(ctx context.Context, id string) (Grant, error)
	UpdateGrant(ctx context.Context, id string, fn func(*Grant) error) (Grant, error)
	// ListGrants returns live grants matching the filter, ordered by
	// CreatedAt then ID.
	ListGrants(ctx context.Context, f GrantFilter) ([]Grant, error)
	// RevokeGrant deletes the grant and every token issued under it,
	// atomically. ErrNotFound if there was no such grant.
	RevokeGrant(ctx context.Context, id string) error
}

// GrantFilter selects grants; zero fields match everything.
type GrantFilter struct {
	UserID   string
	Email    string // compared case-insensitively
	ClientID string
}

// Tokens holds access and refresh tokens by hash.
type Tokens interface {
	GetToken(ctx context.Context, hash string) (Token, error)
	// DeleteToken removes one token (RFC 7009 revocation of a single token).
	DeleteToken(ctx context.Context, hash string) error
	// RotateRefreshToken atomically marks the refresh token oldHash used,
	// stores the new tokens and applies updateGrant (which may be nil) to
	// its grant. If oldHash was already used it returns the old token and
	// ErrAlreadyUsed and changes nothing, so the caller can revoke the grant
	// (refresh-token reuse detection). A used refresh token stays stored,
	// marked, until its own expiry so that reuse can still be detected.
	RotateRefreshToken(ctx context.Context, oldHash string, issue []Token, updateGrant func(*Grant) error) (Token, error)
}

// Consents remembers, server-side, which clients a user approved.
type Consents interface {
	PutConsent(ctx context.Context, c Consent) error
	GetConsent(ctx context.Context, userID, clientID string) (Consent, error)
	DeleteConsent(ctx context.Context, userID, clientID string) error
	ListConsents(ctx context.Context, userID string) ([]Consent, error)
}

// PluginKV is the per-plugin key/value namespace plugins reach through the
// host. Plugin names and keys are validated (see ValidatePluginKey); one
// plugin can never see another's keys. toolgate keeps its own records
// under the reserved name SystemNamespace, which no plugin can have.
type PluginKV interface {
	// KVGet returns the value, or ErrNotFound.
	KVGet(ctx context.Context, plugin, key string) ([]byte, error)
	// KVPut stores value under key. A ttl of zero means no expiry.
	KVPut(ctx context.Context, plugin, key string, value []byte, ttl time.Duration) error
	// KVDelete removes a key; deleting a missing key is not an error.
	KVDelete(ctx context.Context, plugin, key string) error
	// KVList returns up to limit live keys starting with prefix, in
	// lexical order, after the key `after` (exclusive; "" for the start).
	KVList(ctx context.Context, plugin, prefix, after string, limit int) ([]string, error)
}

// Audit keeps a record of every tool call and every denial.
type Audit interface {
	// AppendAudit stores a record. Its ID is assigned by the store when
	// empty; IDs sort in the order records were appended.
	AppendAudit(ctx context.Context, r AuditRecord) (AuditRecord, error)
	// ListAudit returns records newest first.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
}

// AuditBatcher is implemented by backends that can append several audit
// records in one durable write (one commit, one fsync).
type AuditBatcher interface {
	// AppendAuditBatch stores rs as AppendAudit would, all or nothing,
	// assigning empty IDs in slice order, and returns the records as
	// stored. An empty batch stores nothing. A backend that cannot hold
	// the whole batch in one write may store it in consecutive parts, each
	// all or nothing; on error it then returns the records already stored.
	AppendAuditBatch(ctx context.Context, rs []AuditRecord) ([]AuditRecord, error)
}

// AuditQuery selects audit records; zero fields match everything.
type AuditQuery struct {
	Since  time.Time // only records at or after this time
	UserID string
	Tool   string
	Limit  int // at most this many; zero means 100
}

// Client is a registered OAuth client (RFC 7591).
type Client struct {
	ID string
	// SecretHash is HashSecret(secret) for confidential clients, empty for
	// public ones.
	SecretHash string
	// SecretExpiresAt is when the secret stops working; zero means never.
	SecretExpiresAt time.Time
	Name            string
	URI             string
	LogoURI         string
	RedirectURIs    []string
	GrantTypes      []string
	ResponseTypes   []string
	// TokenEndpointAuthMethod is "none", "client_secret_basic" or "client_secret_post".
	TokenEndpointAuthMethod string
	Scope                   string
	SoftwareID              string
	SoftwareVersion         string
	// Metadata is the registration request as the client sent it (JSON),
	// kept so the registration response can echo unknown fields.
	Metadata  []byte
	CreatedAt time.Time
	// LastUsedAt is bumped when the client starts an authorization; unused
	// registrations expire relative to it.
	LastUsedAt time.Time
	ExpiresAt  time.Time
}

// PendingAuthorization is an /authorize request parked while the user signs
// in upstream.
type PendingAuthorization struct {
	StateHash           string // HashSecret(upstream state)
	ClientID            string
	RedirectURI         string
	ClientState         string // the client's own `state`, echoed back
	CodeChallenge       string // the client's PKCE S256 challenge
	CodeChallengeMethod string
	Scopes              []string
	Resource            string
	// UpstreamCodeVerifier is our PKCE verifier for the upstream login.
	UpstreamCodeVerifier string
	// BrowserBinding is a hash of the browser cookie the flow is bound to.
	BrowserBinding string
	UsedAt         time.Time
	CreatedAt      time.Time
	ExpiresAt      time.Time
}

// AuthCode is one of our authorization codes.
type AuthCode struct {
	CodeHash            string
	GrantID             string
	ClientID            string
	RedirectURI         string
	CodeChallenge       string
	CodeChallengeMethod string
	Scopes              []string
	Resource            string
	UsedAt              time.Time
	CreatedAt           time.Time
	ExpiresAt           time.Time
}

// Grant is a user's authorization of a client, with the identity AuthKit
// vouched for at the last sign-in or refresh.
type Grant struct {
	ID             string
	ClientID       string
	UserID         string
	Email          string
	OrganizationID string
	Role           string
	Permissions    []string
	Scopes         []string
	Resource       string
	// UpstreamSessionID is AuthKit's `sid` claim.
	UpstreamSessionID string
	// UpstreamRefreshToken is AuthKit's refresh token, encrypted by the
	// caller before it reaches the store (the store never sees it in clear).
	UpstreamRefreshToken []byte
	// UpstreamExpiresAt is when the AuthKit access token behind the last
	// sign-in or refresh expires (its exp claim); zero when unknown. Access
	// tokens issued for the grant never outlive it.
	UpstreamExpiresAt time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
	ExpiresAt         time.Time
}

// TokenKind says whether a token is an access or a refresh token.
type TokenKind string

const (
	AccessToken  TokenKind = "access"
	RefreshToken TokenKind = "refresh"
)

// Token is an access or refresh token, stored by hash.
type Token struct {
	Hash     string
	Kind     TokenKind
	GrantID  string
	ClientID string
	Scopes   []string
	Resource string
	// UsedAt is set on a refresh token once it was rotated.
	UsedAt    time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Consent records that a user approved a client.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AuditRecord is one tool call or denial. It never holds arguments, tokens
// or secrets.
type AuditRecord struct {
	ID             string
	Time           time.Time
	UserID         string
	Email          string
	OrganizationID string
	ClientID       string
	Plugin         string
	Tool           string
	Decision       string // "allow" or "deny"
	Outcome        string // "ok", "tool_error", "denied", "timeout", ...
	ErrorKind      string
	Duration       time.Duration
	ExpiresAt      time.Time // retention; zero keeps the record forever
}

// HashSecret returns the lookup key for a token, code, state or client
// secret: the hex SHA-256 of the secret. Secrets are high-entropy random
// strings (see NewSecret), so an unsalted fast hash is the right tool here.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewSecret returns a fresh random secret with 256 bits of entropy,
// base64url-encoded without padding (43 characters).
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("store: crypto/rand failed: " + err.Error()) // never on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ExtendGrant returns an update function that sets a grant's ExpiresAt to
// until if that is later; a grant that never expires (zero ExpiresAt) is
// left so. Backends apply it for ExchangeAuthCode's grantExpiresAt.
func ExtendGrant(until time.Time) func(*Grant) error {
	return func(g *Grant) error {
		if !g.ExpiresAt.IsZero() && until.After(g.ExpiresAt) {
			g.ExpiresAt = until.UTC()
		}
		return nil
	}
}

// NewID returns a fresh random identifier (128 bits, 32 hex characters).
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("store: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// Key limits for PluginKV.
const (
	MaxPluginNameLen = 64
	MaxKVKeyLen      = 512
	MaxKVValueLen    = 1 << 20
)

// SystemNamespace is the PluginKV namespace toolgate keeps its own records
// in (the replica registry of core/replica). Backends accept it as a plugin
// name, but no plugin can be called that: it contains a '.', which plugin
// names never do, so no plugin can read or overwrite these records.
const SystemNamespace = "toolgate.system"

// ValidatePluginKey checks a plugin name and key for PluginKV. Plugin names
// are 1-64 characters of [a-z0-9_-], or SystemNamespace; keys are 1-512
// bytes of printable ASCII without "..", NUL or leading "/".
func ValidatePluginKey(plugin, key string) error {
	if err := validatePluginName(plugin); err != nil {
		return err
	}
	if key == "" || len(key) > MaxKVKeyLen {
		return errors.Join(ErrInvalid, errors.New("key must be 1 to 512 bytes"))
	}
	return validateKeyChars(key)
}

// ValidateKVPut checks the arguments of PluginKV.KVPut the same way for
// every backend: the plugin name and key (ValidatePluginKey), a value of at
// most MaxKVValueLen bytes and a ttl that is not negative.
func ValidateKVPut(plugin, key string, value []byte, ttl time.Duration) error {
	if err := ValidatePluginKey(plugin, key); err != nil {
		return err
	}
	if len(value) > MaxKVValueLen {
		return fmt.Errorf("%w: value is %d bytes, the limit is %d", ErrInvalid, len(value), MaxKVValueLen)
	}
	if ttl < 0 {
		return fmt.Errorf("%w: negative ttl", ErrInvalid)
	}
	return nil
}

// ValidatePluginPrefix is ValidatePluginKey for a list prefix, which may be empty.
func ValidatePluginPrefix(plugin, prefix string) error {
	if err := validatePluginName(plugin); err != nil {
		return err
	}
	if len(prefix) > MaxKVKeyLen {
		return errors.Join(ErrInvalid, errors.New("prefix longer than 512 bytes"))
	}
	if prefix == "" {
		return nil
	}
	return validateKeyChars(prefix)
}

func validatePluginName(plugin string) error {
	if plugin == SystemNamespace {
		return nil
	}
	if plugin == "" || len(plugin) > MaxPluginNameLen {
		return errors.Join(ErrInvalid, errors.New("plugin name must be 1 to 64 characters"))
	}
	for _, r := range plugin {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return errors.Join(ErrInvalid, errors.New("plugin name may only hold a-z, 0-9, _ and -"))
		}
	}
	return nil
}

func validateKeyChars(key string) error {
	if key[0] == '/' {
		return errors.Join(ErrInvalid, errors.New("key must not start with /"))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return errors.Join(ErrInvalid, errors.New("key must be printable ASCII"))
		}
		if i > 0 && key[i] == '.' && key[i-1] == '.' {
			return errors.Join(ErrInvalid, errors.New(`key must not contain ".."`))
		}
	}
	return nil
}
