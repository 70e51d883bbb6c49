package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
)

// HKDF labels: one derived key per purpose, so no key is ever used for two
// things.
const (
	labelSign    = "toolgate auth v1: cookie and form signing"
	labelEncrypt = "toolgate auth v1: upstream secrets at rest"
)

// keys holds the keys derived from Config.CookieKey.
type keys struct {
	seal cipher.AEAD
	mac  []byte
}

func deriveKeys(master []byte) (*keys, error) {
	mac, err := hkdf.Key(sha256.New, master, nil, labelSign, 32)
	if err != nil {
		return nil, fmt.Errorf("derive signing key: %w", err)
	}
	enc, err := hkdf.Key(sha256.New, master, nil, labelEncrypt, 32)
	if err != nil {
		return nil, fmt.Errorf("derive encryption key: %w", err)
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fmt.Errorf("encryption cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("encryption cipher: %w", err)
	}
	return &keys{seal: aead, mac: mac}, nil
}

// encrypt seals plaintext with AES-256-GCM under a random nonce; aad binds
// the ciphertext to the record it belongs to (a grant id, a state hash), so
// it cannot be moved to another record.
func (k *keys) encrypt(plaintext, aad string) []byte {
	nonce := make([]byte, k.seal.NonceSize(), k.seal.NonceSize()+len(plaintext)+k.seal.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("auth: crypto/rand failed: " + err.Error())
	}
	return k.seal.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
}

var errDecrypt = errors.New("cannot decrypt upstream secret")

// decrypt opens a value made by encrypt with the same aad.
func (k *keys) decrypt(ciphertext []byte, aad string) (string, error) {
	n := k.seal.NonceSize()
	if len(ciphertext) < n+k.seal.Overhead() {
		return "", errDecrypt
	}
	pt, err := k.seal.Open(nil, ciphertext[:n], ciphertext[n:], []byte(aad))
	if err != nil {
		return "", errDecrypt
	}
	return string(pt), nil
}

// sign returns the base64url HMAC-SHA256 of the parts, each length-prefixed
// so that no two different part lists sign alike.
func (k *keys) sign(purpose string, parts ...string) string {
	m := hmac.New(sha256.New, k.mac)
	writePart(m, purpose)
	for _, p := range parts {
		writePart(m, p)
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func writePart(m interface{ Write([]byte) (int, error) }, p string) {
	var n [8]byte
	l := uint64(len(p))
	for i := range n {
		n[i] = byte(l >> (8 * (7 - i)))
	}
	_, _ = m.Write(n[:])
	_, _ = m.Write([]byte(p))
}

// verify reports, in constant time, whether sig is sign(purpose, parts...).
func (k *keys) verify(sig, purpose string, parts ...string) bool {
	want := k.sign(purpose, parts...)
	return subtle.ConstantTimeCompare([]byte(sig), []byte(want)) == 1
}

// s256 is the PKCE S256 transform: BASE64URL(SHA256(verifier)).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
