package badgerstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// formatV1 is the leading byte of every stored record: JSON follows. A new
// encoding gets a new byte, and decode keeps reading the old ones.
const formatV1 byte = 1

// errCorrupt marks a stored value that does not decode.
var errCorrupt = errors.New("corrupt record")

func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return append([]byte{formatV1}, b...), nil
}

// decode parses a stored value into v (a pointer to a record) and returns
// every time.Time field in UTC.
func decode(b []byte, v any) error {
	if len(b) == 0 {
		return fmt.Errorf("decode %T: %w: empty value", v, errCorrupt)
	}
	if b[0] != formatV1 {
		return fmt.Errorf("decode %T: %w: unknown format version %d", v, errCorrupt, b[0])
	}
	if err := json.Unmarshal(b[1:], v); err != nil {
		return fmt.Errorf("decode %T: %w: %w", v, errCorrupt, err)
	}
	toUTC(reflect.ValueOf(v).Elem())
	return nil
}

var timeType = reflect.TypeFor[time.Time]()

// toUTC converts the top-level time.Time fields of the struct v to UTC.
// Records are flat structs, so one level is all there is.
func toUTC(v reflect.Value) {
	if v.Kind() != reflect.Struct {
		return
	}
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Type() == timeType && f.CanSet() {
			f.Set(reflect.ValueOf(f.Interface().(time.Time).UTC()))
		}
	}
}
