package backup

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/graphkeep/graphkeep/core/lightrag"
)

// TestFormatCarriesWhatTheValidatorFinds: the conversions at the boundary
// copy every field the validator reports, and back. A field added to the
// validator's types fails here until the repository format decides to store
// it (a new field there, a golden update) or not.
func TestFormatCarriesWhatTheValidatorFinds(t *testing.T) {
	var fs lightrag.FileStats
	fill(t, &fs)
	var st lightrag.Stats
	fill(t, &st)
	var iv lightrag.Invariant
	fill(t, &iv)
	for _, c := range []struct {
		name       string
		found, got any
	}{
		{"file", &fs, fileCounts(&fs)},
		{"graph", &st, graphCounts(&st)},
		{"invariant", []lightrag.Invariant{iv}, invariants([]lightrag.Invariant{iv})},
	} {
		want, _ := json.Marshal(c.found)
		got, _ := json.Marshal(c.got)
		if string(got) != string(want) {
			t.Errorf("%s: the format stores\n%s\nthe validator found\n%s", c.name, got, want)
		}
	}
	if back := fileStats(fileCounts(&fs)); !reflect.DeepEqual(back, &fs) {
		t.Errorf("a stored file's counts read back as %+v, want %+v", back, fs)
	}
	if fileCounts(nil) != nil || fileStats(nil) != nil || graphCounts(nil) != nil || invariants(nil) != nil {
		t.Error("nothing found must be stored as nothing")
	}
}

// fill sets every exported field of the struct v points to to a value
// other than its zero, recursively.
func fill(t *testing.T, v any) {
	t.Helper()
	fillValue(t, reflect.ValueOf(v).Elem())
}

func fillValue(t *testing.T, v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillValue(t, v.Field(i))
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillValue(t, v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillValue(t, v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		key, elem := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillValue(t, key)
		fillValue(t, elem)
		v.SetMapIndex(key, elem)
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	default:
		t.Fatalf("fill: %s is not handled; teach fillValue", v.Type())
	}
}
