package sdk

import (
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/toolgate/toolgate/sdk/internal/jsonx"
)

// A codec is the decode/encode plan for one Go type, built once by
// reflection and reused for every call, so the hot path walks a prepared
// structure instead of rediscovering the type. Decoding is strict: unknown
// object members, a missing required member and a constraint violation are
// errors (the schema says "additionalProperties": false).
type codec struct {
	typ  reflect.Type
	kind codecKind
	elem *codec // slice, map value, pointer target
	// rkind and size describe typ for the direct (unsafe) path that
	// primitive struct members take, avoiding reflect calls.
	rkind reflect.Kind
	size  uintptr

	fields []field // struct members, in declaration order
	byName map[string]int
	// hasRequired/hasDefault let decodeStruct skip the bookkeeping.
	hasRequired bool
	hasDefault  bool
}

type codecKind uint8

const (
	kindBool codecKind = iota
	kindInt
	kindUint
	kindFloat
	kindString
	kindBytes
	kindSlice
	kindMap
	kindStruct
	kindPointer
	kindAny       // interface{}: encoding/json
	kindFallback  // json.Marshaler/Unmarshaler: encoding/json
	kindRawJSON   // json.RawMessage: copied as is
	kindTextValue // encoding.TextMarshaler/Unmarshaler (e.g. time.Time)
)

// field is one member of a struct codec.
type field struct {
	name      string
	key       []byte  // `"name":` pre-escaped for encoding
	index     []int   // reflect field index path (embedded structs are flattened)
	offset    uintptr // byte offset in the outermost struct
	omitEmpty bool
	required  bool
	codec     *codec
	def       reflect.Value // default applied when the member is absent
	rules     *rules        // constraints checked after decoding, nil if none
	doc       string        // description for the schema
	tag       tagInfo       // parsed schema tag, for the schema
}

// maxFields bounds struct size so that seen-member bookkeeping fits in a
// fixed bitmap without allocating.
const maxFields = 256

var (
	marshalerType       = reflect.TypeFor[json.Marshaler]()
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	rawMessageType      = reflect.TypeFor[json.RawMessage]()
)

// codecs caches plans by type; the plans themselves are immutable.
var codecs sync.Map // reflect.Type -> *codec

// codecFor returns the plan for t, building it on first use.
func codecFor(t reflect.Type) (*codec, error) {
	if c, ok := codecs.Load(t); ok {
		return c.(*codec), nil
	}
	c, err := buildCodec(t, map[reflect.Type]bool{})
	if err != nil {
		return nil, err
	}
	actual, _ := codecs.LoadOrStore(t, c)
	return actual.(*codec), nil
}

func buildCodec(t reflect.Type, building map[reflect.Type]bool) (*codec, error) {
	c := &codec{typ: t, rkind: t.Kind(), size: t.Size()}
	pt := reflect.PointerTo(t)
	switch {
	case t == rawMessageType:
		c.kind = kindRawJSON
		return c, nil
	case t.Implements(marshalerType) || pt.Implements(unmarshalerType):
		c.kind = kindFallback
		return c, nil
	case t.Kind() != reflect.String && (t.Implements(textMarshalerType) && pt.Implements(textUnmarshalerType)):
		c.kind = kindTextValue
		return c, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		c.kind = kindBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		c.kind = kindInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		c.kind = kindUint
	case reflect.Float32, reflect.Float64:
		c.kind = kindFloat
	case reflect.String:
		c.kind = kindString
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return nil, fmt.Errorf("unsupported interface type %s", t)
		}
		c.kind = kindAny
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(unmarshalerType) {
			c.kind = kindBytes
			return c, nil
		}
		c.kind = kindSlice
		elem, err := buildCodec(t.Elem(), building)
		if err != nil {
			return nil, err
		}
		c.elem = elem
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("unsupported map key type %s (want a string kind)", t.Key())
		}
		c.kind = kindMap
		elem, err := buildCodec(t.Elem(), building)
		if err != nil {
			return nil, err
		}
		c.elem = elem
	case reflect.Pointer:
		c.kind = kindPointer
		elem, err := buildCodec(t.Elem(), building)
		if err != nil {
			return nil, err
		}
		c.elem = elem
	case reflect.Struct:
		if building[t] {
			return nil, fmt.Errorf("recursive type %s is not supported", t)
		}
		building[t] = true
		defer delete(building, t)
		c.kind = kindStruct
		if err := c.addFields(t, nil, 0, building); err != nil {
			return nil, err
		}
		if len(c.fields) > maxFields {
			return nil, fmt.Errorf("struct %s has %d fields, more than %d", t, len(c.fields), maxFields)
		}
		c.byName = make(map[string]int, len(c.fields))
		for i, f := range c.fields {
			if _, dup := c.byName[f.name]; dup {
				return nil, fmt.Errorf("struct %s: duplicate JSON name %q", t, f.name)
			}
			c.byName[f.name] = i
			c.hasRequired = c.hasRequired || f.required
			c.hasDefault = c.hasDefault || f.def.IsValid()
		}
	default:
		return nil, fmt.Errorf("unsupported type %s", t)
	}
	return c, nil
}

// addFields collects the JSON members of struct t, flattening embedded
// structs without a JSON name the way encoding/json does.
func (c *codec) addFields(t reflect.Type, prefix []int, base uintptr, building map[reflect.Type]bool) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		index := append(slices.Clone(prefix), i)
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			if err := c.addFields(sf.Type, index, base+sf.Offset, building); err != nil {
				return err
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		fc, err := buildCodec(sf.Type, building)
		if err != nil {
			return fmt.Errorf("field %s: %w", sf.Name, err)
		}
		omit := false
		for o := range strings.SplitSeq(opts, ",") {
			if o == "omitempty" || o == "omitzero" {
				omit = true
			}
		}
		f := field{
			name:      name,
			key:       append(jsonx.AppendString(nil, name), ':'),
			index:     index,
			offset:    base + sf.Offset,
			omitEmpty: omit,
			required:  !omit && sf.Type.Kind() != reflect.Pointer,
			codec:     fc,
			doc:       sf.Tag.Get("jsonschema"),
		}
		ti, err := parseSchemaTag(sf.Tag.Get("schema"), sf.Type)
		if err != nil {
			return fmt.Errorf("field %s: %w", sf.Name, err)
		}
		f.tag = ti
		if ti.def != nil {
			if sf.Type.Kind() == reflect.Pointer {
				return fmt.Errorf("field %s: a default needs a non-pointer field", sf.Name)
			}
			f.def = reflect.ValueOf(ti.def).Convert(sf.Type)
			f.required = false
		}
		f.rules = ti.rules()
		c.fields = append(c.fields, f)
	}
	return nil
}

// argError is a decoding failure with the JSON path where it happened.
type argError struct {
	path []string // member names and [i] indexes, innermost first
	msg  string
}

func (e *argError) Error() string {
	if len(e.path) == 0 {
		return e.msg
	}
	p := slices.Clone(e.path)
	slices.Reverse(p)
	return strings.Join(p, ".") + ": " + e.msg
}

func atPath(err error, elem string) error {
	var ae *argError
	if errors.As(err, &ae) {
		ae.path = append(ae.path, elem)
		return ae
	}
	return &argError{path: []string{elem}, msg: err.Error()}
}

func argErrorf(format string, args ...any) error {
	return &argError{msg: fmt.Sprintf(format, args...)}
}

// decode reads one JSON value from s into v, which must be settable.
func (c *codec) decode(s *jsonx.Scanner, v reflect.Value) error {
	if s.Peek() == 'n' {
		if err := s.Literal("null"); err != nil {
			return err
		}
		switch c.kind {
		case kindPointer, kindMap, kindSlice, kindBytes, kindAny, kindRawJSON:
			v.SetZero()
		}
		return nil
	}
	switch c.kind {
	case kindBool:
		b, err := s.Bool()
		if err != nil {
			return argErrorf("want a boolean")
		}
		v.SetBool(b)
	case kindInt:
		lit, err := c.number(s)
		if err != nil {
			return err
		}
		n, err := parseInt(lit)
		if err != nil || v.OverflowInt(n) {
			return argErrorf("want an integer in range, got %s", lit)
		}
		v.SetInt(n)
	case kindUint:
		lit, err := c.number(s)
		if err != nil {
			return err
		}
		n, err := parseInt(lit)
		if err != nil || n < 0 || v.OverflowUint(uint64(n)) {
			return argErrorf("want a non-negative integer in range, got %s", lit)
		}
		v.SetUint(uint64(n))
	case kindFloat:
		lit, err := c.number(s)
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(string(lit), v.Type().Bits())
		if err != nil {
			return argErrorf("number %s out of range", lit)
		}
		v.SetFloat(f)
	case kindString:
		if s.Peek() != '"' {
			return argErrorf("want a string")
		}
		raw, esc, err := s.String()
		if err != nil {
			return err
		}
		v.SetString(jsonx.Unquote(raw, esc))
	case kindBytes:
		if s.Peek() != '"' {
			return argErrorf("want a base64 string")
		}
		raw, esc, err := s.String()
		if err != nil {
			return err
		}
		if esc {
			raw = jsonx.AppendUnquote(nil, raw)
		}
		b := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
		n, err := base64.StdEncoding.Decode(b, raw)
		if err != nil {
			return argErrorf("invalid base64: %v", err)
		}
		v.SetBytes(b[:n])
	case kindSlice:
		return c.decodeSlice(s, v)
	case kindMap:
		return c.decodeMap(s, v)
	case kindStruct:
		return c.decodeStruct(s, v)
	case kindPointer:
		if v.IsNil() {
			v.Set(reflect.New(c.typ.Elem()))
		}
		return c.elem.decode(s, v.Elem())
	case kindRawJSON:
		raw, err := s.SkipValue()
		if err != nil {
			return err
		}
		v.SetBytes(append([]byte(nil), raw...))
	case kindAny, kindFallback, kindTextValue:
		raw, err := s.SkipValue()
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
			return argErrorf("%v", err)
		}
	}
	return nil
}

func (c *codec) number(s *jsonx.Scanner) ([]byte, error) {
	switch b := s.Peek(); {
	case b == '-' || b >= '0' && b <= '9':
		return s.Number()
	}
	return nil, argErrorf("want a number")
}

// parseInt parses an integer literal, also accepting integral values written
// with a fraction or exponent (4.0, 1e2): JSON Schema counts them as integers
// and models write them.
func parseInt(lit []byte) (int64, error) {
	if n, err := strconv.ParseInt(string(lit), 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || f != float64(int64(f)) || f >= 1<<63 || f < -(1<<63) {
		return 0, errors.New("not an integer")
	}
	return int64(f), nil
}

func (c *codec) decodeSlice(s *jsonx.Scanner, v reflect.Value) error {
	if s.Peek() != '[' {
		return argErrorf("want an array")
	}
	empty, err := s.ArrayStart()
	if err != nil {
		return err
	}
	v.SetLen(0)
	if empty {
		if v.IsNil() {
			v.Set(reflect.MakeSlice(c.typ, 0, 0))
		}
		return nil
	}
	for i := 0; ; i++ {
		v.Grow(1)
		v.SetLen(i + 1)
		if err := c.elem.decode(s, v.Index(i)); err != nil {
			return atPath(err, strconv.Itoa(i))
		}
		more, err := s.ArrayNext()
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

func (c *codec) decodeMap(s *jsonx.Scanner, v reflect.Value) error {
	if s.Peek() != '{' {
		return argErrorf("want an object")
	}
	empty, err := s.ObjectStart()
	if err != nil {
		return err
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(c.typ))
	}
	if empty {
		return nil
	}
	kt, et := c.typ.Key(), c.typ.Elem()
	for {
		raw, esc, err := s.Key()
		if err != nil {
			return err
		}
		key := jsonx.Unquote(raw, esc)
		ev := reflect.New(et).Elem()
		if err := c.elem.decode(s, ev); err != nil {
			return atPath(err, key)
		}
		v.SetMapIndex(reflect.ValueOf(key).Convert(kt), ev)
		more, err := s.ObjectNext()
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

func (c *codec) decodeStruct(s *jsonx.Scanner, v reflect.Value) error {
	if s.Peek() != '{' {
		return argErrorf("want an object")
	}
	empty, err := s.ObjectStart()
	if err != nil {
		return err
	}
	var seen [maxFields / 64]uint64
	var base unsafe.Pointer // v's address, fetched on first use
	for !empty {
		raw, esc, err := s.Key()
		if err != nil {
			return err
		}
		i := -1
		if !esc {
			i = c.lookup(raw)
		} else if j, ok := c.byName[jsonx.Unquote(raw, esc)]; ok {
			i = j
		}
		if i < 0 {
			return argErrorf("unknown field %q", jsonx.Unquote(raw, esc))
		}
		f := &c.fields[i]
		// A null member counts as absent: it cannot satisfy "required"
		// and it gets the default.
		null := s.Peek() == 'n'
		if !null && f.codec.kind <= kindString {
			if base == nil {
				base = v.Addr().UnsafePointer()
			}
			if err := f.codec.decodeDirect(s, unsafe.Add(base, f.offset)); err != nil {
				return atPath(err, f.name)
			}
		} else if err := f.codec.decode(s, fieldByIndex(v, f.index)); err != nil {
			return atPath(err, f.name)
		}
		if !null {
			if f.rules != nil {
				if err := f.rules.check(fieldByIndex(v, f.index)); err != nil {
					return atPath(err, f.name)
				}
			}
			seen[i/64] |= 1 << (i % 64)
		}
		more, err := s.ObjectNext()
		if err != nil {
			return err
		}
		empty = !more
	}
	if c.hasRequired || c.hasDefault {
		for i := range c.fields {
			if seen[i/64]&(1<<(i%64)) != 0 {
				continue
			}
			f := &c.fields[i]
			if f.required {
				return argErrorf("missing required field %q", f.name)
			}
			if f.def.IsValid() {
				fieldByIndex(v, f.index).Set(f.def)
			}
		}
	}
	return nil
}

// decodeDirect decodes a primitive (kindBool through kindString) into the
// variable at p, which has c's type. It is decode without reflect calls,
// which a WebAssembly guest pays for dearly.
func (c *codec) decodeDirect(s *jsonx.Scanner, p unsafe.Pointer) error {
	switch c.kind {
	case kindBool:
		b, err := s.Bool()
		if err != nil {
			return argErrorf("want a boolean")
		}
		*(*bool)(p) = b
	case kindString:
		if s.Peek() != '"' {
			return argErrorf("want a string")
		}
		raw, esc, err := s.String()
		if err != nil {
			return err
		}
		*(*string)(p) = jsonx.Unquote(raw, esc)
	case kindFloat:
		if c.rkind == reflect.Float64 {
			s.SkipSpace()
			if f, end, ok := fastNumber(s.Data, s.Pos); ok {
				*(*float64)(p) = f
				s.Pos = end
				return nil
			}
		}
		lit, err := c.number(s)
		if err != nil {
			return err
		}
		if c.rkind == reflect.Float64 {
			f, err := strconv.ParseFloat(string(lit), 64)
			if err != nil {
				return argErrorf("number %s out of range", lit)
			}
			*(*float64)(p) = f
			return nil
		}
		f, err := strconv.ParseFloat(string(lit), 32)
		if err != nil {
			return argErrorf("number %s out of range", lit)
		}
		*(*float32)(p) = float32(f)
	case kindInt, kindUint:
		lit, err := c.number(s)
		if err != nil {
			return err
		}
		n, ok := fastInt(lit)
		if !ok {
			if n, err = parseInt(lit); err != nil {
				return argErrorf("want an integer, got %s", lit)
			}
		}
		if c.kind == kindUint {
			if n < 0 || c.size < 8 && uint64(n) >= 1<<(8*c.size) {
				return argErrorf("want a non-negative integer that fits %s, got %s", c.typ, lit)
			}
		} else if c.size < 8 && (n >= 1<<(8*c.size-1) || n < -(1<<(8*c.size-1))) {
			return argErrorf("want an integer that fits %s, got %s", c.typ, lit)
		}
		switch c.size {
		case 1:
			*(*uint8)(p) = uint8(n)
		case 2:
			*(*uint16)(p) = uint16(n)
		case 4:
			*(*uint32)(p) = uint32(n)
		default:
			*(*uint64)(p) = uint64(n)
		}
	}
	return nil
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// fastFloat parses a plain decimal (no exponent, at most 15 significant
// digits) exactly: the mantissa and the power of ten are exact float64s,
// so one correctly rounded division gives what strconv.ParseFloat gives.
// ok is false for anything else.
func fastFloat(lit []byte) (f float64, ok bool) {
	i, neg := 0, false
	if len(lit) > 0 && lit[0] == '-' {
		i, neg = 1, true
	}
	var m uint64
	digits, frac, dot := 0, 0, false
	for ; i < len(lit); i++ {
		c := lit[i]
		switch {
		case c >= '0' && c <= '9':
			if digits == 15 {
				return 0, false
			}
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if digits == 0 || dot && frac == 0 {
		return 0, false
	}
	f = float64(m) / pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}

// fastNumber reads a JSON number at d[i:] in one pass when fastFloat's
// conditions hold (no exponent, at most 15 digits, no leading zero before
// another digit) and returns its value and end. ok is false otherwise, and
// the caller takes the general path.
func fastNumber(d []byte, i int) (f float64, end int, ok bool) {
	neg := false
	if i < len(d) && d[i] == '-' {
		neg = true
		i++
	}
	if i >= len(d) || d[i] < '0' || d[i] > '9' || d[i] == '0' && i+1 < len(d) && d[i+1] >= '0' && d[i+1] <= '9' {
		return 0, 0, false
	}
	var m uint64
	digits, frac, dot := 0, 0, false
	for ; i < len(d); i++ {
		c := d[i]
		if c >= '0' && c <= '9' {
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
			continue
		}
		if c == '.' && !dot {
			dot = true
			continue
		}
		break
	}
	if digits > 15 || dot && frac == 0 || i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		return 0, 0, false
	}
	f = float64(m) / pow10[frac]
	if neg {
		f = -f
	}
	return f, i, true
}

// fastInt parses a plain integer literal of at most 18 digits.
func fastInt(lit []byte) (n int64, ok bool) {
	i, neg := 0, false
	if len(lit) > 0 && lit[0] == '-' {
		i, neg = 1, true
	}
	if len(lit)-i == 0 || len(lit)-i > 18 {
		return 0, false
	}
	for ; i < len(lit); i++ {
		c := lit[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// lookup finds a member by its unescaped name without allocating.
func (c *codec) lookup(name []byte) int {
	if len(c.fields) <= 8 {
		for i := range c.fields {
			f := c.fields[i].name
			if len(f) == len(name) && len(f) > 0 && f[0] == name[0] && jsonx.Equal(name, f) {
				return i
			}
		}
		return -1
	}
	if i, ok := c.byName[string(name)]; ok {
		return i
	}
	return -1
}

func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	if len(index) == 1 {
		return v.Field(index[0])
	}
	for _, i := range index {
		v = v.Field(i)
	}
	return v
}

// encode appends the JSON for v to dst.
func (c *codec) encode(dst []byte, v reflect.Value) ([]byte, error) {
	switch c.kind {
	case kindBool:
		return strconv.AppendBool(dst, v.Bool()), nil
	case kindInt:
		return strconv.AppendInt(dst, v.Int(), 10), nil
	case kindUint:
		return strconv.AppendUint(dst, v.Uint(), 10), nil
	case kindFloat:
		return jsonx.AppendFloat(dst, v.Float(), v.Type().Bits())
	case kindString:
		return jsonx.AppendString(dst, v.String()), nil
	case kindBytes:
		if v.IsNil() {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v.Bytes())
		return append(dst, '"'), nil
	case kindSlice:
		if v.IsNil() {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i := range v.Len() {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = c.elem.encode(dst, v.Index(i)); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case kindMap:
		if v.IsNil() {
			return append(dst, "null"...), nil
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(jsonx.AppendString(dst, k.String()), ':')
			var err error
			if dst, err = c.elem.encode(dst, v.MapIndex(k)); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case kindStruct:
		dst = append(dst, '{')
		first := true
		for i := range c.fields {
			f := &c.fields[i]
			fv := fieldByIndex(v, f.index)
			if f.omitEmpty && isEmpty(fv) {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, f.key...)
			var err error
			if dst, err = f.codec.encode(dst, fv); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case kindPointer:
		if v.IsNil() {
			return append(dst, "null"...), nil
		}
		return c.elem.encode(dst, v.Elem())
	case kindRawJSON:
		if v.Len() == 0 {
			return append(dst, "null"...), nil
		}
		s := jsonx.New(v.Bytes())
		if _, err := s.SkipValue(); err != nil {
			return dst, fmt.Errorf("json.RawMessage: %w", err)
		}
		if err := s.End(); err != nil {
			return dst, fmt.Errorf("json.RawMessage: %w", err)
		}
		return append(dst, v.Bytes()...), nil
	default: // kindAny, kindFallback, kindTextValue
		b, err := json.Marshal(v.Interface())
		if err != nil {
			return dst, err
		}
		return append(dst, b...), nil
	}
}

// isEmpty reports whether v is empty in the omitempty sense.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
