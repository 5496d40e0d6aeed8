// Package testsupport holds what noderoute's tests share: the switch that
// turns a missing prerequisite from a skip into a failure, the repository
// root, sorted map keys, CIDR parsing, the three-Node cluster the tests
// program routes for, and throwaway network namespaces.
//
// It is for tests only: no production package may import it.
package testsupport
