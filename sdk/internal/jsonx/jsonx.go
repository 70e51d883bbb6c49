// Package jsonx is a small, allocation-free JSON scanner for the guest's hot
// path: it walks a byte slice, validates as it goes (RFC 8259), and hands out
// sub-slices of the input for strings, numbers and raw values. Decoding into
// Go values is the caller's business.
package jsonx

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of arrays and objects SkipValue accepts.
const MaxDepth = 1000

// ErrSyntax is wrapped by every error about malformed JSON.
var ErrSyntax = errors.New("invalid json")

// Scanner reads JSON values from Data starting at Pos.
type Scanner struct {
	Data []byte
	Pos  int
}

// New returns a scanner over data.
func New(data []byte) Scanner { return Scanner{Data: data} }

func (s *Scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrSyntax, s.Pos, fmt.Sprintf(format, args...))
}

// The small methods below have an inlinable fast path and an out-of-line
// slow path: in a WebAssembly guest every function call and loop iteration
// is a termination check in the host, so the common case must not call.

// SkipSpace advances past JSON whitespace.
func (s *Scanner) SkipSpace() {
	if s.Pos < len(s.Data) && s.Data[s.Pos] > ' ' {
		return
	}
	s.skipSpace()
}

func (s *Scanner) skipSpace() {
	for s.Pos < len(s.Data) {
		switch s.Data[s.Pos] {
		case ' ', '\t', '\n', '\r':
			s.Pos++
		default:
			return
		}
	}
}

// Peek skips whitespace and returns the next byte, or 0 at the end.
func (s *Scanner) Peek() byte {
	if s.Pos < len(s.Data) && s.Data[s.Pos] > ' ' {
		return s.Data[s.Pos]
	}
	s.skipSpace()
	if s.Pos < len(s.Data) {
		return s.Data[s.Pos]
	}
	return 0
}

// Consume skips whitespace and, if the next byte is c, consumes it.
func (s *Scanner) Consume(c byte) bool {
	if s.Pos < len(s.Data) && s.Data[s.Pos] == c {
		s.Pos++
		return true
	}
	return s.consumeSlow(c)
}

func (s *Scanner) consumeSlow(c byte) bool {
	s.skipSpace()
	if s.Pos < len(s.Data) && s.Data[s.Pos] == c {
		s.Pos++
		return true
	}
	return false
}

// Expect skips whitespace and consumes c or fails.
func (s *Scanner) Expect(c byte) error {
	if p := s.Pos; p < len(s.Data) && s.Data[p] == c {
		s.Pos = p + 1
		return nil
	}
	return s.expectSlow(c)
}

func (s *Scanner) expectSlow(c byte) error {
	if s.consumeSlow(c) {
		return nil
	}
	if s.Pos >= len(s.Data) {
		return s.errorf("unexpected end of input, want %q", c)
	}
	return s.errorf("unexpected %q, want %q", s.Data[s.Pos], c)
}

// End skips trailing whitespace and fails if anything else is left.
func (s *Scanner) End() error {
	if s.Peek() != 0 || s.Pos < len(s.Data) {
		return s.errorf("unexpected data after the value")
	}
	return nil
}

// ObjectStart consumes '{' and reports whether the object is empty (in which
// case its '}' is consumed too).
func (s *Scanner) ObjectStart() (empty bool, err error) {
	if p := s.Pos; p+1 < len(s.Data) && s.Data[p] == '{' && s.Data[p+1] != '}' && s.Data[p+1] > ' ' {
		s.Pos = p + 1
		return false, nil
	}
	return s.objectStartSlow()
}

func (s *Scanner) objectStartSlow() (empty bool, err error) {
	if err := s.Expect('{'); err != nil {
		return false, err
	}
	return s.Consume('}'), nil
}

// Key reads an object key and the colon after it. The key is returned raw
// (without quotes); escaped reports whether it contains escapes.
func (s *Scanner) Key() (raw []byte, escaped bool, err error) {
	raw, escaped, err = s.String()
	if err != nil {
		return nil, false, err
	}
	if p := s.Pos; p < len(s.Data) && s.Data[p] == ':' {
		s.Pos = p + 1
		return raw, escaped, nil
	}
	if err := s.expectSlow(':'); err != nil {
		return nil, false, err
	}
	return raw, escaped, nil
}

// ObjectNext is called after a member's value: it consumes ',' and reports
// true if another member follows, or consumes '}' and reports false.
func (s *Scanner) ObjectNext() (more bool, err error) {
	if p := s.Pos; p < len(s.Data) {
		if b := s.Data[p]; b == ',' || b == '}' {
			s.Pos = p + 1
			return b == ',', nil
		}
	}
	return s.objectNextSlow()
}

func (s *Scanner) objectNextSlow() (more bool, err error) {
	if s.consumeSlow(',') {
		return true, nil
	}
	return false, s.expectSlow('}')
}

// ArrayStart consumes '[' and reports whether the array is empty.
func (s *Scanner) ArrayStart() (empty bool, err error) {
	if err := s.Expect('['); err != nil {
		return false, err
	}
	return s.Consume(']'), nil
}

// ArrayNext is called after an element: it consumes ',' and reports true
// if another element follows, or consumes ']' and reports false.
func (s *Scanner) ArrayNext() (more bool, err error) {
	if s.Consume(',') {
		return true, nil
	}
	return false, s.Expect(']')
}

// String reads a string and returns its raw contents (between the quotes).
// It checks escapes and rejects control characters. escaped reports that
// the contents need Unquote's slow path: they hold an escape or a non-ASCII
// byte (invalid UTF-8 is accepted here and replaced by Unquote, as
// encoding/json does).
func (s *Scanner) String() (raw []byte, escaped bool, err error) {
	if err := s.Expect('"'); err != nil {
		return nil, false, err
	}
	d := s.Data
	start, i := s.Pos, s.Pos
	// Look at eight bytes per iteration and jump straight to the first
	// one that matters: in a WebAssembly guest every loop iteration is a
	// termination check in the host, and those checks are what costs.
	nonASCII := uint64(msb)
	for {
		var c byte
		if i+8 <= len(d) {
			w := load64(d, i)
			m := zeroBytes(w^(lsb*'"')) | zeroBytes(w^(lsb*'\\')) | zeroBytes(w&(lsb*0xe0)) | (w & nonASCII)
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) / 8
			c = d[i]
		} else if i < len(d) {
			c = d[i]
		} else {
			s.Pos = i
			return nil, false, s.errorf("unterminated string")
		}
		switch {
		case c == '"':
			s.Pos = i + 1
			return d[start:i], escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(d) {
				s.Pos = i
				return nil, false, s.errorf("unterminated string")
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 > len(d) || unhex(d[i+1])|unhex(d[i+2])|unhex(d[i+3])|unhex(d[i+4]) < 0 {
					s.Pos = i
					return nil, false, s.errorf("bad unicode escape")
				}
				i += 5
			default:
				s.Pos = i
				return nil, false, s.errorf("bad escape %q", d[i])
			}
		case c < 0x20:
			s.Pos = i
			return nil, false, s.errorf("control character in string")
		default:
			// A non-ASCII byte: note it and stop looking for more.
			if c >= utf8.RuneSelf {
				escaped = true
				nonASCII = 0
			}
			i++
		}
	}
}

// Number reads a number and returns its literal.
func (s *Scanner) Number() ([]byte, error) {
	s.SkipSpace()
	start := s.Pos
	d := s.Data
	i := s.Pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return nil, s.errorf("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			s.Pos = i
			return nil, s.errorf("invalid number")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			s.Pos = i
			return nil, s.errorf("invalid number")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	s.Pos = i
	return d[start:i], nil
}

// Literal consumes the literal word (true, false or null) or fails.
func (s *Scanner) Literal(word string) error {
	s.SkipSpace()
	if len(s.Data)-s.Pos >= len(word) && Equal(s.Data[s.Pos:s.Pos+len(word)], word) {
		s.Pos += len(word)
		return nil
	}
	return s.errorf("want %s", word)
}

// Bool reads true or false.
func (s *Scanner) Bool() (bool, error) {
	switch s.Peek() {
	case 't':
		return true, s.Literal("true")
	case 'f':
		return false, s.Literal("false")
	}
	return false, s.errorf("want a boolean")
}

// Null consumes null if it comes next and reports whether it did.
func (s *Scanner) Null() bool {
	s.SkipSpace()
	d, p := s.Data, s.Pos
	if p+4 <= len(d) && d[p] == 'n' && d[p+1] == 'u' && d[p+2] == 'l' && d[p+3] == 'l' {
		s.Pos = p + 4
		return true
	}
	return false
}

// SkipValue validates and skips one value, returning its raw bytes.
func (s *Scanner) SkipValue() ([]byte, error) {
	s.SkipSpace()
	start := s.Pos
	if err := s.skip(0); err != nil {
		return nil, err
	}
	return s.Data[start:s.Pos], nil
}

func (s *Scanner) skip(depth int) error {
	if depth > MaxDepth {
		return s.errorf("nested too deeply")
	}
	switch s.Peek() {
	case '{':
		empty, err := s.ObjectStart()
		if err != nil || empty {
			return err
		}
		for {
			if _, _, err := s.Key(); err != nil {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			more, err := s.ObjectNext()
			if err != nil || !more {
				return err
			}
		}
	case '[':
		empty, err := s.ArrayStart()
		if err != nil || empty {
			return err
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			more, err := s.ArrayNext()
			if err != nil || !more {
				return err
			}
		}
	case '"':
		_, _, err := s.String()
		return err
	case 't':
		return s.Literal("true")
	case 'f':
		return s.Literal("false")
	case 'n':
		return s.Literal("null")
	case 0:
		return s.errorf("unexpected end of input")
	default:
		_, err := s.Number()
		return err
	}
}

// Unquote returns the Go string for the raw contents of a JSON string as
// returned by String. Invalid UTF-8 and lone surrogates become U+FFFD, as in
// encoding/json.
func Unquote(raw []byte, escaped bool) string {
	if !escaped {
		return string(raw)
	}
	return string(AppendUnquote(make([]byte, 0, len(raw)), raw))
}

// AppendUnquote appends the decoded contents of raw (already validated by
// String) to dst.
func AppendUnquote(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c == '\\' {
			i++
			switch raw[i] {
			case '"', '\\', '/':
				dst = append(dst, raw[i])
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(raw[i+1 : i+5])
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
						r2 = hex4(raw[i+3 : i+7])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
			}
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		dst = utf8.AppendRune(dst, r)
		i += size
	}
	return dst
}

func unhex(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r = r<<4 | unhex(c)
	}
	return r
}

// AppendString appends s as a JSON string literal, escaping like
// encoding/json (including <, > and & and the line separators U+2028 and
// U+2029, and replacing invalid UTF-8 with U+FFFD).
func AppendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		var c byte
		if i+8 <= len(s) {
			w := load64(s, i)
			m := zeroBytes(w^(lsb*'"')) | zeroBytes(w^(lsb*'\\')) | zeroBytes(w&(lsb*0xe0)) |
				zeroBytes(w^(lsb*'<')) | zeroBytes(w^(lsb*'>')) | zeroBytes(w^(lsb*'&')) | w&msb
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) / 8
		}
		c = s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		var buf [utf8.UTFMax]byte
		r, size := utf8.DecodeRune(buf[:copy(buf[:], s[i:min(i+utf8.UTFMax, len(s))])])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// AppendFloat appends f formatted as encoding/json formats a float64 of the
// given bit size. It fails for NaN and infinities, which JSON cannot carry.
func AppendFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if f != f || f > maxFloat || f < -maxFloat {
		return dst, fmt.Errorf("unsupported value %v", f)
	}
	if bits == 64 && f == float64(int64(f)) && f < 1e15 && f > -1e15 && !(f == 0 && math.Signbit(f)) {
		// Integral values print as integers, the same digits as 'f' gives,
		// without the shortest-representation search.
		return strconv.AppendInt(dst, int64(f), 10), nil
	}
	if bits == 64 {
		if out, ok := appendShortDecimal(dst, f); ok {
			return out, nil
		}
	}
	abs := f
	if abs < 0 {
		abs = -abs
	}
	fmtByte := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			fmtByte = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, fmtByte, -1, bits)
	if fmtByte == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

const maxFloat = 1.7976931348623157e308

// decimalPow10 are the powers of ten appendShortDecimal tries.
var decimalPow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6}

// appendShortDecimal formats f the way strconv's shortest 'f' formatting
// does when f has at most six decimals, without the general algorithm.
// It finds the fewest decimals k for which m = round(f·10^k) gives back f
// as m/10^k (exact: m and 10^k are exact float64s and the division is
// correctly rounded). Keeping |m| below 2^50 spaces the candidates more
// than four ulps of f apart, so at most one k-decimal rounds to f and it
// is the one strconv prints. ok is false when no k up to 6 works.
func appendShortDecimal(dst []byte, f float64) ([]byte, bool) {
	for k := 1; k < len(decimalPow10); k++ {
		x := f * decimalPow10[k]
		if x >= 1<<50 || x <= -(1<<50) {
			return dst, false
		}
		m := math.Round(x)
		if m/decimalPow10[k] != f || m == 0 {
			continue
		}
		n := int64(m)
		if n < 0 {
			dst = append(dst, '-')
			n = -n
		}
		var buf [24]byte
		digits := strconv.AppendInt(buf[:0], n, 10)
		if len(digits) <= k {
			dst = append(dst, '0', '.')
			for range k - len(digits) {
				dst = append(dst, '0')
			}
			return append(dst, digits...), true
		}
		dst = append(dst, digits[:len(digits)-k]...)
		dst = append(dst, '.')
		return append(dst, digits[len(digits)-k:]...), true
	}
	return dst, false
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// zeroBytes returns w with 0x80 in exactly the bytes that are zero and 0
// elsewhere.
func zeroBytes(w uint64) uint64 {
	const low7 = 0x7f7f7f7f7f7f7f7f
	return ^((w&low7 + low7) | w | low7)
}

// load64 reads eight bytes of s at i, little-endian.
func load64[S ~string | ~[]byte](s S, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// HasPrefix reports whether b starts with prefix, comparing eight bytes at
// a time (bytes.HasPrefix compares byte by byte in WebAssembly).
func HasPrefix(b, prefix []byte) bool {
	if len(b) < len(prefix) {
		return false
	}
	n := len(prefix)
	i := 0
	// 32 bytes per iteration: every iteration is a termination check in
	// the host, so fewer, fatter iterations win.
	for ; i+32 <= n; i += 32 {
		if load64(b, i) != load64(prefix, i) || load64(b, i+8) != load64(prefix, i+8) ||
			load64(b, i+16) != load64(prefix, i+16) || load64(b, i+24) != load64(prefix, i+24) {
			return false
		}
	}
	for ; i+8 <= n; i += 8 {
		if load64(b, i) != load64(prefix, i) {
			return false
		}
	}
	if i == n {
		return true
	}
	if n >= 8 {
		return load64(b, n-8) == load64(prefix, n-8)
	}
	return tail(b, i, n) == tail(prefix, i, n)
}

// Equal reports whether b holds exactly the bytes of str, without calling
// the runtime's byte-by-byte comparison.
func Equal(b []byte, str string) bool {
	if len(b) != len(str) {
		return false
	}
	n := len(str)
	i := 0
	for ; i+8 <= n; i += 8 {
		if load64(b, i) != load64(str, i) {
			return false
		}
	}
	if i == n {
		return true
	}
	if n >= 8 {
		return load64(b, n-8) == load64(str, n-8)
	}
	return tail(b, i, n) == tail(str, i, n)
}

// tail packs the bytes s[i:n] (fewer than eight) into an integer without a loop.
func tail[S ~string | ~[]byte](s S, i, n int) uint64 {
	var x uint64
	switch n - i {
	case 7:
		x |= uint64(s[i+6]) << 48
		fallthrough
	case 6:
		x |= uint64(s[i+5]) << 40
		fallthrough
	case 5:
		x |= uint64(s[i+4]) << 32
		fallthrough
	case 4:
		x |= uint64(s[i+3]) << 24
		fallthrough
	case 3:
		x |= uint64(s[i+2]) << 16
		fallthrough
	case 2:
		x |= uint64(s[i+1]) << 8
		fallthrough
	case 1:
		x |= uint64(s[i])
	}
	return x
}
