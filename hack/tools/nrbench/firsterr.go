package main

import "sync"

// firstError keeps the first of concurrent errors (atomic.Value would
// panic on errors of different concrete types).
type firstError struct {
	once sync.Once
	err  error
}

func (f *firstError) set(err error) { f.once.Do(func() { f.err = err }) }

func (f *firstError) get() error { return f.err }
