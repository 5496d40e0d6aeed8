package openflow

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/contiv/libOpenflow/util"
	"github.com/wenyingd/ofnet/ofctrl"
	"k8s.io/klog/v2"
)

// Reading the bridge's flows over our own OpenFlow connection.
//
// We send our own OFPMP_FLOW requests rather than use ofnet's
// DumpFlowStats: that one only hears replies after EnableMonitor (without
// it every call times out, as in an earlier trial) and returns the first
// part of a reply only, while a dump of thousands of flows comes in many
// parts. The replies reach us through switchEvents.MultipartReply, which
// hands them to the client's flowStatsCollector, keyed by the request's
// xid.
//
// Every request names one of our tables and our cookie round (cookie mask
// RoundMask), so ovs-vswitchd only ever sends back flows we built. That is
// not just to save work: libOpenflow parses replies on goroutines without a
// recover, and it cannot parse every flow. Tried on OVS 3.1: a hand-added
// flow with `actions=controller(userdata=...)` makes DecodeAction
// dereference nil, which kills the process; one matching `nw_ecn` is not
// decoded and the rest of its message is read at the wrong offset. A dump
// of other cookies or tables could thus kill the agent. Our own flows (the
// ARP and NDP matches, the NX and set_field actions) parse correctly, and
// the integration tests keep such foreign flows next to them.

// flowStatsCollector gathers the parts of OFPMP_FLOW replies to the requests
// that a dump has registered, by xid. Its zero value is ready to use.
type flowStatsCollector struct {
	mu      sync.Mutex
	pending map[uint32]*flowStatsDump
}

// flowStatsDump is what has arrived for the requests of one dump: the IDs
// of the flows only. Each part is reduced to IDs as it arrives, so that a
// dump of thousands of flows never holds their decoded form (many
// megabytes in a large cluster, see docs/performance.md) at once.
type flowStatsDump struct {
	mu  sync.Mutex
	ids []flowID
	// open holds the xids whose last part (the one without
	// OFPMPF_REPLY_MORE) has not arrived yet.
	open map[uint32]bool
	// changed is signalled, without blocking, after every part.
	changed chan struct{}
}

// register starts collecting the replies to xids. Call it before sending
// the requests, so that no part can come before its dump is known.
func (c *flowStatsCollector) register(xids []uint32) *flowStatsDump {
	d := &flowStatsDump{open: map[uint32]bool{}, changed: make(chan struct{}, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[uint32]*flowStatsDump{}
	}
	for _, xid := range xids {
		d.open[xid] = true
		c.pending[xid] = d
	}
	return d
}

// unregister stops collecting for xids; parts still on their way are
// dropped when they arrive.
func (c *flowStatsCollector) unregister(xids []uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, xid := range xids {
		delete(c.pending, xid)
	}
}

// deliver files one part of a multipart reply. It runs on ofnet's receive
// goroutine, so it only appends under a lock and never blocks.
func (c *flowStatsCollector) deliver(reply *openflow13.MultipartReply) {
	if reply == nil || reply.Type != openflow13.MultipartType_Flow {
		return
	}
	c.mu.Lock()
	d := c.pending[reply.Xid]
	c.mu.Unlock()
	if d == nil {
		return // not ours, or a part that came after its dump ended
	}
	d.add(reply)
}

func (d *flowStatsDump) add(reply *openflow13.MultipartReply) {
	var ids []flowID
	for _, m := range reply.Body {
		if fs, ok := m.(*openflow13.FlowStats); ok && fs != nil {
			id, err := flowStatsID(fs)
			if err != nil {
				// A flow whose match libOpenflow could not
				// decode: if it is one we want, it is
				// re-added.
				klog.V(2).InfoS("Ignoring a flow of the dump", "table", fs.TableId, "priority", fs.Priority, "cookie", fmt.Sprintf("%#x", fs.Cookie), "err", err)
				continue
			}
			ids = append(ids, id)
		}
	}
	d.mu.Lock()
	d.ids = append(d.ids, ids...)
	if reply.Flags&openflow13.OFPMPF_REPLY_MORE == 0 {
		delete(d.open, reply.Xid)
	}
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// since returns the IDs of the flows that arrived after the first n, and
// whether every request's last part has arrived.
func (d *flowStatsDump) since(n int) ([]flowID, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ids[n:], len(d.open) == 0
}

// wait returns the IDs of the flows of the dump once every request's last
// part has arrived and complete says nothing is missing from them, or, if
// complete keeps saying something is, settle after the last part arrived.
//
// Why settle: libOpenflow parses incoming messages on 25 goroutines, so the
// parts of one reply reach us in any order, and the last part (the one
// without OFPMPF_REPLY_MORE) may come before earlier ones. OpenFlow 1.3
// parts carry no sequence number or total, so "everything arrived" cannot
// be known for sure. When all our flows are there (the usual case) we are
// done without waiting; otherwise stragglers get a short while, after which
// anything still unseen counts as missing. A flow counted missing only
// because its part came even later is re-added unchanged (same cookie,
// match and actions: OpenFlow replaces it in place, resetting its
// counters), which is harmless. The opposite mistake, a flow counted
// present that is not, cannot happen: parts are kept per xid and every
// dump has fresh xids.
func (d *flowStatsDump) wait(ctx context.Context, complete func(map[flowID]bool) bool, settle time.Duration) (map[flowID]bool, error) {
	seen := map[flowID]bool{}
	received := 0
	var settled <-chan time.Time
	for {
		select {
		case <-d.changed:
			flows, ended := d.since(received)
			received += len(flows)
			addFlowIDs(seen, flows)
			if !ended {
				continue
			}
			if complete(seen) {
				return seen, nil
			}
			// Restarted by every late part: stragglers come close
			// together, right after the last part.
			settled = time.After(settle)
		case <-settled:
			flows, _ := d.since(received)
			addFlowIDs(seen, flows)
			return seen, nil
		case <-ctx.Done():
			_, ended := d.since(received)
			return nil, fmt.Errorf("flow stats reply incomplete (%d flows received, last parts received: %t): %w", received, ended, ctx.Err())
		}
	}
}

// addFlowIDs adds ids to seen.
func addFlowIDs(seen map[flowID]bool, ids []flowID) {
	for _, id := range ids {
		seen[id] = true
	}
}

// flowStatsRequest asks for the flows of table whose cookie round is round.
func flowStatsRequest(table uint8, round uint16) *openflow13.MultipartRequest {
	body := openflow13.NewFlowStatsRequest()
	body.TableId = table
	body.Cookie = Cookie{Round: round}.Uint64()
	body.CookieMask = RoundMask
	return multipartRequest(openflow13.MultipartType_Flow, body)
}

// multipartRequest wraps body in a multipart request of type typ, with a
// fresh xid.
func multipartRequest(typ uint16, body util.Message) *openflow13.MultipartRequest {
	req := &openflow13.MultipartRequest{
		Header: openflow13.NewOfp13Header(),
		Type:   typ,
		Body:   body,
	}
	req.Header.Type = openflow13.Type_MultiPartRequest
	return req
}

// dumpFlows returns the IDs of the flows of round in every table of
// Tables(), read from sw. See flowStatsDump.wait for complete and settle.
func (c *OFClient) dumpFlows(ctx context.Context, sw *ofctrl.OFSwitch, round uint16, complete func(map[flowID]bool) bool, settle time.Duration) (map[flowID]bool, error) {
	var reqs []*openflow13.MultipartRequest
	var xids []uint32
	for _, table := range Tables() {
		req := flowStatsRequest(table, round)
		reqs = append(reqs, req)
		xids = append(xids, req.Xid)
	}
	dump := c.flowStats.register(xids)
	defer c.flowStats.unregister(xids)
	for _, req := range reqs {
		if err := sw.Send(req); err != nil {
			return nil, fmt.Errorf("send flow stats request: %w", err)
		}
	}
	return dump.wait(ctx, complete, settle)
}

// flowID identifies a flow on the bridge for the drift check: table,
// priority and match (what OpenFlow itself tells flows apart by) plus the
// cookie, so that a flow of ours with the wrong cookie counts as missing.
// Actions are left out: ovs-vswitchd answers with its own encoding of them
// (e.g. a load of a whole field comes back as a set_field), so comparing
// them would need a normalizer; a flow whose actions were changed by hand
// while keeping our cookie is not detected.
type flowID string

func newFlowID(table uint8, priority uint16, cookie uint64, match openflow13.Match) (flowID, error) {
	key, err := matchKey(match)
	if err != nil {
		return "", err
	}
	return flowID(fmt.Sprintf("table=%d,priority=%d,cookie=%#x,match=%s", table, priority, cookie, key)), nil
}

func flowModID(fm *openflow13.FlowMod) (flowID, error) {
	return newFlowID(fm.TableId, fm.Priority, fm.Cookie, fm.Match)
}

func flowStatsID(fs *openflow13.FlowStats) (flowID, error) {
	return newFlowID(fs.TableId, fs.Priority, fs.Cookie, fs.Match)
}

// matchKey encodes a match independently of the order of its fields:
// ovs-vswitchd sends them back in its own order (eth_type, arp_op, arp_tpa
// for the ARP responder we send as eth_type, arp_tpa, arp_op).
func matchKey(m openflow13.Match) (string, error) {
	fields := make([][]byte, 0, len(m.Fields))
	for i := range m.Fields {
		f := &m.Fields[i]
		if f.Value == nil || (f.HasMask && f.Mask == nil) {
			return "", fmt.Errorf("match field class %#x field %d has no value", f.Class, f.Field)
		}
		b, err := f.MarshalBinary()
		if err != nil {
			return "", fmt.Errorf("encode match field class %#x field %d: %w", f.Class, f.Field, err)
		}
		fields = append(fields, b)
	}
	sort.Slice(fields, func(i, j int) bool { return bytes.Compare(fields[i], fields[j]) < 0 })
	var key []byte
	for i, f := range fields {
		if i > 0 {
			key = append(key, '.')
		}
		key = hex.AppendEncode(key, f)
	}
	return string(key), nil
}
