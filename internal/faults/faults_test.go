package faults

import (
	"errors"
	"testing"
)

func TestSet(t *testing.T) {
	var s Set
	if err := s.Injected("A"); err != nil {
		t.Fatalf("zero Set injected %v", err)
	}
	a, b, next := errors.New("a"), errors.New("b"), errors.New("next")
	s.Inject("A", a)
	if err := s.Injected("A"); err != a {
		t.Fatalf("Injected(A) = %v, want a", err)
	}
	if err := s.Injected("B"); err != nil {
		t.Fatalf("Injected(B) = %v, want nil: A's error leaked", err)
	}
	s.InjectNext(next)
	if err := s.Injected("B"); err != next {
		t.Fatalf("Injected(B) after InjectNext = %v, want next", err)
	}
	if err := s.Injected("A"); err != a {
		t.Fatalf("InjectNext fired twice or hid A: %v", err)
	}
	s.Inject(Any, b)
	if err := s.Injected("C"); err != b {
		t.Fatalf("Injected(C) with Any = %v, want b", err)
	}
	if err := s.Injected("A"); err != a {
		t.Fatalf("Injected(A) = %v, want a: a named operation comes before Any", err)
	}
	s.Inject("A", nil)
	s.Inject(Any, nil)
	if err := s.Injected("A", "C"); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
}
