package analysis

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
)

// MarshalIndentSafe encodes v as indented JSON like json.MarshalIndent, but
// writes NaN and ±Inf floats as null instead of failing, because analysis
// results use NaN for "not measured". Struct fields follow their json tags
// (name, "-" and omitempty); types with their own MarshalJSON keep it.
func MarshalIndentSafe(v any) ([]byte, error) {
	return json.MarshalIndent(jsonSafe(reflect.ValueOf(v)), "", "  ")
}

var marshalerType = reflect.TypeFor[json.Marshaler]()

// jsonSafe converts a value into maps, slices and scalars that encoding/json
// accepts, with non-finite floats replaced by nil.
func jsonSafe(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type().Implements(marshalerType) && v.Kind() != reflect.Pointer && v.Kind() != reflect.Interface {
		return v.Interface()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return jsonSafe(v.Elem())
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return f
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		items := make([]any, v.Len())
		for i := range items {
			items[i] = jsonSafe(v.Index(i))
		}
		return items
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		entries := make(map[string]any, v.Len())
		iterator := v.MapRange()
		for iterator.Next() {
			entries[keyString(iterator.Key())] = jsonSafe(iterator.Value())
		}
		return entries
	case reflect.Struct:
		return structSafe(v)
	default:
		return v.Interface()
	}
}

func keyString(key reflect.Value) string {
	if key.Kind() == reflect.String {
		return key.String()
	}
	encoded, _ := json.Marshal(key.Interface())
	return strings.Trim(string(encoded), `"`)
}

// structSafe converts a struct's exported fields by their json tags.
func structSafe(v reflect.Value) map[string]any {
	fields := make(map[string]any)
	for i := range v.NumField() {
		field := v.Type().Field(i)
		if !field.IsExported() {
			continue
		}
		name, options, _ := strings.Cut(field.Tag.Get("json"), ",")
		if name == "-" && options == "" {
			continue
		}
		if name == "" {
			name = field.Name
		}
		value := v.Field(i)
		if strings.Contains(options, "omitempty") && value.IsZero() {
			continue
		}
		if (value.Kind() == reflect.Slice || value.Kind() == reflect.Map) && strings.Contains(options, "omitempty") && value.Len() == 0 {
			continue
		}
		fields[name] = jsonSafe(value)
	}
	return fields
}
