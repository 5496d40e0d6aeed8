package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestFlagTableMatchesConfig checks that every field of Config has one row
// in flagTable, in field order, with the field's JSON name as its key and a
// field getter that points at that field.
func TestFlagTableMatchesConfig(t *testing.T) {
	typ := reflect.TypeOf(Config{})
	if typ.NumField() != len(flagTable) {
		t.Fatalf("Config has %d fields, flagTable %d rows", typ.NumField(), len(flagTable))
	}
	var c Config
	base := reflect.ValueOf(&c).Elem()
	for i, f := range flagTable {
		field := typ.Field(i)
		key, _, _ := strings.Cut(field.Tag.Get("json"), ",")
		if f.key != key {
			t.Errorf("flagTable[%d] (--%s): key %q, Config field %s has %q", i, f.name, f.key, field.Name, key)
		}
		got := reflect.ValueOf(f.field(&c)).Pointer()
		if want := base.Field(i).Addr().Pointer(); got != want {
			t.Errorf("flagTable[%d] (--%s): field getter does not point at Config.%s", i, f.name, field.Name)
		}
	}
}
