package testsupport

import (
	"maps"
	"slices"
)

// SortedKeys returns m's keys in order, for stable messages and loops.
func SortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
