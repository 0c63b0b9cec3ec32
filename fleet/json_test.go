package fleet

import (
	"reflect"
	"regexp"
	"testing"
	"time"
)

// TestJSON_FieldNamesAreSnakeCase walks every type that --json prints and fails on a field whose JSON name
// is not snake_case (a Go field without a json tag prints as "OldPID").
func TestJSON_FieldNamesAreSnakeCase(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ == reflect.TypeOf(time.Time{}) {
			return
		}
		seen[typ] = true
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name := regexp.MustCompile(`,.*`).ReplaceAllString(tag, "")
			if f.Anonymous && name == "" {
				walk(f.Type, path)
				continue
			}
			if !snake.MatchString(name) {
				t.Errorf("%s.%s (%s) prints as %q, not snake_case", path, f.Name, typ, name)
			}
			walk(f.Type, path+"."+name)
		}
	}
	walk(reflect.TypeOf(Report{}), "report")
	walk(reflect.TypeOf(Event{}), "event")
}
