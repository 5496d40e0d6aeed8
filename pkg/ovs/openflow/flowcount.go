package openflow

import (
	"context"
	"fmt"
	"sync"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/wenyingd/ofnet/ofctrl"
)

// The flow check's cheap first step: counting.
//
// A full dump costs the agent CPU and short-lived allocations in proportion
// to the number of responders (libOpenflow decodes every flow), every check
// period; in a large cluster that garbage alone pushed the agent's peak RSS
// past its memory target (docs/performance.md). So a check first asks
// ovs-vswitchd how many flows of the current round each of our tables holds
// (OFPMP_AGGREGATE: one 24-byte answer per table) and dumps only when a
// count differs from what the client keeps there. What that misses, as long
// as it lasts: a flow of ours deleted while, in the same table, one more
// flow with our round's cookie appears: one the client adds between its
// snapshot and ovs-vswitchd's answer (the next check sees the deletion), or
// a flow of our round the client does not know of (added by hand with our
// cookie, or left by a bundle whose commit reply was lost: such an extra
// flow also makes every check dump, which shows in its cost, not in its
// result).

// flowCounts gathers OFPMP_AGGREGATE replies by xid. Its zero value is
// ready to use.
type flowCounts struct {
	mu      sync.Mutex
	pending map[uint32]chan uint32
}

// deliver hands the flow count of an aggregate reply to the request that
// waits for it. It never blocks: each request's channel holds one value.
func (f *flowCounts) deliver(reply *openflow13.MultipartReply) {
	if reply == nil || reply.Type != openflow13.MultipartType_Aggregate || len(reply.Body) == 0 {
		return
	}
	agg, ok := reply.Body[0].(*openflow13.AggregateStats)
	if !ok || agg == nil {
		return
	}
	f.mu.Lock()
	ch := f.pending[reply.Xid]
	f.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- agg.FlowCount:
	default:
	}
}

// count returns the number of flows of round in each table of want, asked
// of sw, one request per table.
func (f *flowCounts) count(ctx context.Context, sw *ofctrl.OFSwitch, round uint16, tables []uint8) (map[uint8]uint32, error) {
	chans := map[uint8]chan uint32{}
	var reqs []*openflow13.MultipartRequest
	f.mu.Lock()
	if f.pending == nil {
		f.pending = map[uint32]chan uint32{}
	}
	for _, table := range tables {
		req := aggregateRequest(table, round)
		ch := make(chan uint32, 1)
		f.pending[req.Xid] = ch
		chans[table] = ch
		reqs = append(reqs, req)
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		for _, req := range reqs {
			delete(f.pending, req.Xid)
		}
		f.mu.Unlock()
	}()
	for _, req := range reqs {
		if err := sw.Send(req); err != nil {
			return nil, fmt.Errorf("send aggregate flow stats request: %w", err)
		}
	}
	counts := map[uint8]uint32{}
	for table, ch := range chans {
		select {
		case n := <-ch:
			counts[table] = n
		case <-ctx.Done():
			return nil, fmt.Errorf("no aggregate flow stats reply for table %d: %w", table, ctx.Err())
		}
	}
	return counts, nil
}

// aggregateRequest asks for the flow count of table among the flows whose
// cookie round is round.
func aggregateRequest(table uint8, round uint16) *openflow13.MultipartRequest {
	body := openflow13.NewAggregateStatsRequest()
	body.TableId = table
	body.OutPort = openflow13.P_ANY
	body.OutGroup = openflow13.OFPG_ANY
	body.Cookie = Cookie{Round: round}.Uint64()
	body.CookieMask = RoundMask
	return multipartRequest(openflow13.MultipartType_Aggregate, body)
}

// wantedCountsLocked returns, per table of Tables(), how many flows of the
// current round the client keeps there: what wantedFlowsOfLocked lists,
// counted without building a flow. Callers hold c.mu.
func (c *OFClient) wantedCountsLocked() map[uint8]uint32 {
	return countByTable(c.wantedFlowsOfLocked())
}

// countsMatch reports whether the bridge holds as many flows of round in
// each of our tables as want says.
func (c *OFClient) countsMatch(ctx context.Context, sw *ofctrl.OFSwitch, round uint16, want map[uint8]uint32) (bool, error) {
	tables := make([]uint8, 0, len(want))
	for t := range want {
		tables = append(tables, t)
	}
	have, err := c.flowCounts.count(ctx, sw, round, tables)
	if err != nil {
		return false, err
	}
	for t, n := range want {
		if have[t] != n {
			return false, nil
		}
	}
	return true, nil
}
