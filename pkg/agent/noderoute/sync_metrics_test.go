package noderoute

import (
	"sync"
	"time"
)

type syncRecord struct {
	sync SyncType
	kind string
}

type recorder struct {
	mu       sync.Mutex
	records  []syncRecord
	rejected map[string]int
}

func (r *recorder) ObserveRejectedCIDR(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rejected == nil {
		r.rejected = map[string]int{}
	}
	r.rejected[kind]++
}

func (r *recorder) rejections() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.rejected {
		out[k] = v
	}
	return out
}

func (r *recorder) ObserveSync(s SyncType, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, syncRecord{s, ErrorKind(err)})
}

func (r *recorder) has(want syncRecord) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if rec == want {
			return true
		}
	}
	return false
}
