package pgstore

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// The data column holds a record as JSON. Fields that are also columns are
// in it too, but the column wins on read for the fields SQL changes on its
// own (used_at).

func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// decode parses a data column into v (a pointer to a record) and returns
// every time.Time field in UTC.
func decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %T: corrupt record: %w", v, err)
	}
	toUTC(reflect.ValueOf(v).Elem())
	return nil
}

var timeType = reflect.TypeFor[time.Time]()

// toUTC converts the top-level time.Time fields of the struct v to UTC.
// Records are flat structs, so one level is all there is.
func toUTC(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Type() == timeType && f.CanSet() {
			f.Set(reflect.ValueOf(f.Interface().(time.Time).UTC()))
		}
	}
}

// clean makes a free-text audit field storable in a text column, which
// holds neither NUL nor invalid UTF-8 (JSON, Badger's encoding, replaces
// invalid UTF-8 the same way).
func clean(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// tokenKindOK reports whether k is a kind of token the store keeps.
func tokenKindOK(k store.TokenKind) bool {
	return k == store.AccessToken || k == store.RefreshToken
}
