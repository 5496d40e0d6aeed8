// Package faults is the failure injection the fakes share (route.Fake,
// openflow.Fake, ovsconfig.Fake), so that every test makes a fake fail the
// same way: name an operation and the error its calls return, without
// effect, instead of doing it. The fakes are compiled into their packages,
// which is why this is not in internal/testsupport; it holds no state
// outside a Set.
package faults

import "sync"

// Any names every operation of a fake.
const Any = "*"

// Set holds the errors injected into one fake. The zero value injects
// nothing; it is safe for concurrent use.
type Set struct {
	mu   sync.Mutex
	errs map[string]error
	next error
}

// Inject makes the calls of op fail with err until Inject(op, nil). op is
// the name of a method of the fake ("EnsureBridge"), Any, or what else the
// fake documents (route.Fake: a destination such as "10.222.2.0/24").
func (s *Set) Inject(op string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.errs, op)
		return
	}
	if s.errs == nil {
		s.errs = map[string]error{}
	}
	s.errs[op] = err
}

// InjectNext makes the next call, whatever its operation, fail with err.
// It takes precedence over Inject.
func (s *Set) InjectNext(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = err
}

// Injected is for the fake: the error a call doing ops must return, if
// any: an InjectNext error (used up by this call), else the error injected
// for the first of ops that has one, else the one injected for Any.
func (s *Set) Injected(ops ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.next; err != nil {
		s.next = nil
		return err
	}
	for _, op := range append(ops, Any) {
		if err := s.errs[op]; err != nil {
			return err
		}
	}
	return nil
}
