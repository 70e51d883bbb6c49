package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/toolgate/toolgate/sdk/internal/jsonx"
)

// tagInfo is a parsed `schema:"..."` struct tag.
//
// Syntax: comma-separated key=value pairs. Keys: minimum, maximum,
// exclusiveMinimum, exclusiveMaximum (numbers); minLength, maxLength
// (strings, in characters); minItems, maxItems (slices); enum (values
// separated by |); default (one value); format, title; pattern (must be the
// last key: its value runs to the end of the tag and may contain commas).
// Values are typed from the field: enum=1|2 on an int field are numbers.
type tagInfo struct {
	min, max, exclMin, exclMax *float64
	minLen, maxLen             *int
	minItems, maxItems         *int
	enum                       []any
	def                        any
	format, title, pattern     string
}

func parseSchemaTag(tag string, t reflect.Type) (tagInfo, error) {
	var ti tagInfo
	if tag == "" {
		return ti, nil
	}
	base := t
	for base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	for tag != "" {
		var item string
		if strings.HasPrefix(tag, "pattern=") {
			item, tag = tag, ""
		} else {
			item, tag, _ = strings.Cut(tag, ",")
		}
		key, val, ok := strings.Cut(item, "=")
		if !ok {
			return ti, fmt.Errorf("schema tag: %q is not key=value", item)
		}
		var err error
		switch key {
		case "minimum":
			ti.min, err = tagFloat(val)
		case "maximum":
			ti.max, err = tagFloat(val)
		case "exclusiveMinimum":
			ti.exclMin, err = tagFloat(val)
		case "exclusiveMaximum":
			ti.exclMax, err = tagFloat(val)
		case "minLength":
			ti.minLen, err = tagInt(val)
		case "maxLength":
			ti.maxLen, err = tagInt(val)
		case "minItems":
			ti.minItems, err = tagInt(val)
		case "maxItems":
			ti.maxItems, err = tagInt(val)
		case "format":
			ti.format = val
		case "title":
			ti.title = val
		case "pattern":
			ti.pattern = val
		case "default":
			ti.def, err = tagValue(val, base)
		case "enum":
			for v := range strings.SplitSeq(val, "|") {
				ev, err := tagValue(v, base)
				if err != nil {
					return ti, fmt.Errorf("schema tag: enum: %w", err)
				}
				ti.enum = append(ti.enum, ev)
			}
		default:
			return ti, fmt.Errorf("schema tag: unknown key %q", key)
		}
		if err != nil {
			return ti, fmt.Errorf("schema tag: %s: %w", key, err)
		}
	}
	return ti, nil
}

func tagFloat(s string) (*float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("want a number, got %q", s)
	}
	return &f, nil
}

func tagInt(s string) (*int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("want a non-negative integer, got %q", s)
	}
	return &n, nil
}

// tagValue parses a default or enum value as the field's type.
func tagValue(s string, t reflect.Type) (any, error) {
	switch t.Kind() {
	case reflect.String:
		return reflect.ValueOf(s).Convert(t).Interface(), nil
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("want a boolean, got %q", s)
		}
		return reflect.ValueOf(b).Convert(t).Interface(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || reflect.New(t).Elem().OverflowInt(n) {
			return nil, fmt.Errorf("want an integer fitting %s, got %q", t, s)
		}
		return reflect.ValueOf(n).Convert(t).Interface(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || reflect.New(t).Elem().OverflowUint(n) {
			return nil, fmt.Errorf("want an unsigned integer fitting %s, got %q", t, s)
		}
		return reflect.ValueOf(n).Convert(t).Interface(), nil
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("want a number, got %q", s)
		}
		return reflect.ValueOf(f).Convert(t).Interface(), nil
	}
	return nil, fmt.Errorf("default and enum need a string, boolean or number field, not %s", t)
}

// rules are the constraints of a tag that the decoder enforces; format and
// pattern are left to the schema's reader.
type rules struct {
	ti tagInfo
}

func (ti tagInfo) rules() *rules {
	if ti.min == nil && ti.max == nil && ti.exclMin == nil && ti.exclMax == nil &&
		ti.minLen == nil && ti.maxLen == nil && ti.minItems == nil && ti.maxItems == nil && ti.enum == nil {
		return nil
	}
	return &rules{ti: ti}
}

// check validates a decoded value (pointers are followed; nil passes).
func (r *rules) check(v reflect.Value) error {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	ti := &r.ti
	var num float64
	isNum := true
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		num = float64(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		num = float64(v.Uint())
	case reflect.Float32, reflect.Float64:
		num = v.Float()
	default:
		isNum = false
	}
	if isNum {
		switch {
		case ti.min != nil && num < *ti.min:
			return argErrorf("%v is less than the minimum %v", num, *ti.min)
		case ti.max != nil && num > *ti.max:
			return argErrorf("%v is greater than the maximum %v", num, *ti.max)
		case ti.exclMin != nil && num <= *ti.exclMin:
			return argErrorf("%v is not greater than %v", num, *ti.exclMin)
		case ti.exclMax != nil && num >= *ti.exclMax:
			return argErrorf("%v is not less than %v", num, *ti.exclMax)
		}
	}
	switch v.Kind() {
	case reflect.String:
		n := utf8.RuneCountInString(v.String())
		if ti.minLen != nil && n < *ti.minLen {
			return argErrorf("shorter than %d characters", *ti.minLen)
		}
		if ti.maxLen != nil && n > *ti.maxLen {
			return argErrorf("longer than %d characters", *ti.maxLen)
		}
	case reflect.Slice, reflect.Map:
		if ti.minItems != nil && v.Len() < *ti.minItems {
			return argErrorf("fewer than %d items", *ti.minItems)
		}
		if ti.maxItems != nil && v.Len() > *ti.maxItems {
			return argErrorf("more than %d items", *ti.maxItems)
		}
	}
	if ti.enum != nil {
		got := v.Interface()
		for _, e := range ti.enum {
			if e == got {
				return nil
			}
		}
		return argErrorf("%v is not one of %v", got, ti.enum)
	}
	return nil
}

// schemaFor returns the JSON Schema (draft 2020-12) of the codec's type.
func schemaFor(c *codec) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := writeSchema(&b, c, "", tagInfo{}); err != nil {
		return nil, err
	}
	return json.RawMessage(b.Bytes()), nil
}

var timeType = reflect.TypeFor[time.Time]()

// writeSchema writes the schema of c with the member-level description and
// tag constraints, keys in a fixed order so that manifests are stable.
func writeSchema(b *bytes.Buffer, c *codec, doc string, ti tagInfo) error {
	if c.kind == kindPointer {
		return writeSchema(b, c.elem, doc, ti)
	}
	var members [][2]string // key, JSON value
	add := func(k string, v any) error {
		j, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("schema %s: %w", k, err)
		}
		members = append(members, [2]string{k, string(j)})
		return nil
	}
	addRaw := func(k, v string) { members = append(members, [2]string{k, v}) }
	switch c.kind {
	case kindBool:
		addRaw("type", `"boolean"`)
	case kindInt, kindUint:
		addRaw("type", `"integer"`)
		if c.kind == kindUint && ti.min == nil && ti.exclMin == nil {
			addRaw("minimum", "0")
		}
	case kindFloat:
		addRaw("type", `"number"`)
	case kindString:
		addRaw("type", `"string"`)
	case kindBytes:
		addRaw("type", `"string"`)
		addRaw("contentEncoding", `"base64"`)
	case kindTextValue, kindFallback:
		if c.typ == timeType {
			addRaw("type", `"string"`)
			addRaw("format", `"date-time"`)
		} else if c.kind == kindTextValue {
			addRaw("type", `"string"`)
		}
	case kindSlice:
		addRaw("type", `"array"`)
		var items bytes.Buffer
		if err := writeSchema(&items, c.elem, "", tagInfo{}); err != nil {
			return err
		}
		addRaw("items", items.String())
	case kindMap:
		addRaw("type", `"object"`)
		var items bytes.Buffer
		if err := writeSchema(&items, c.elem, "", tagInfo{}); err != nil {
			return err
		}
		addRaw("additionalProperties", items.String())
	case kindStruct:
		addRaw("type", `"object"`)
		var props bytes.Buffer
		props.WriteByte('{')
		var required []string
		for i := range c.fields {
			f := &c.fields[i]
			if i > 0 {
				props.WriteByte(',')
			}
			props.Write(f.key)
			if err := writeSchema(&props, f.codec, f.doc, f.tag); err != nil {
				return fmt.Errorf("field %s: %w", f.name, err)
			}
			if f.required {
				required = append(required, f.name)
			}
		}
		props.WriteByte('}')
		addRaw("properties", props.String())
		if required != nil {
			if err := add("required", required); err != nil {
				return err
			}
		}
		addRaw("additionalProperties", "false")
	}
	if doc != "" {
		if err := add("description", doc); err != nil {
			return err
		}
	}
	if ti.title != "" {
		if err := add("title", ti.title); err != nil {
			return err
		}
	}
	for _, kv := range []struct {
		k string
		v *float64
	}{{"minimum", ti.min}, {"maximum", ti.max}, {"exclusiveMinimum", ti.exclMin}, {"exclusiveMaximum", ti.exclMax}} {
		if kv.v != nil {
			if err := add(kv.k, *kv.v); err != nil {
				return err
			}
		}
	}
	for _, kv := range []struct {
		k string
		v *int
	}{{"minLength", ti.minLen}, {"maxLength", ti.maxLen}, {"minItems", ti.minItems}, {"maxItems", ti.maxItems}} {
		if kv.v != nil {
			addRaw(kv.k, strconv.Itoa(*kv.v))
		}
	}
	if ti.pattern != "" {
		if err := add("pattern", ti.pattern); err != nil {
			return err
		}
	}
	if ti.format != "" {
		if err := add("format", ti.format); err != nil {
			return err
		}
	}
	if ti.enum != nil {
		if err := add("enum", ti.enum); err != nil {
			return err
		}
	}
	if ti.def != nil {
		if err := add("default", ti.def); err != nil {
			return err
		}
	}
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonx.AppendString(nil, m[0]))
		b.WriteByte(':')
		b.WriteString(m[1])
	}
	b.WriteByte('}')
	return nil
}
