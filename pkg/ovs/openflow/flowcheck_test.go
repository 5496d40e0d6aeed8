package openflow

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/contiv/libOpenflow/util"
)

var checkMAC, _ = net.ParseMAC("aa:bb:cc:dd:ee:ff")

func testPipeline() pipeline { return pipeline{round: 7, virtualMAC: checkMAC} }

// testFlowMods returns the base flows and a few responders of both
// families.
func testFlowMods(t *testing.T) []*openflow13.FlowMod {
	t.Helper()
	p := testPipeline()
	mods := p.baseFlows()
	for _, gw := range []string{"10.222.2.1", "10.222.3.1", "fd00:10:222:2::1", "::1:0:0:1"} {
		fm, err := p.responderFlow(net.ParseIP(gw))
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, fm)
	}
	return mods
}

func mustFlowModID(t *testing.T, fm *openflow13.FlowMod) flowID {
	t.Helper()
	id, err := flowModID(fm)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// flowStatsOf returns what a switch would report for fm, with the match
// fields in reverse order (ovs-vswitchd uses an order of its own).
func flowStatsOf(fm *openflow13.FlowMod) *openflow13.FlowStats {
	fs := openflow13.NewFlowStats()
	fs.TableId, fs.Priority, fs.Cookie = fm.TableId, fm.Priority, fm.Cookie
	for i := len(fm.Match.Fields) - 1; i >= 0; i-- {
		fs.Match.AddField(fm.Match.Fields[i])
	}
	fs.Instructions = fm.Instructions
	fs.Length = fs.Len()
	return fs
}

// TestFlowIDSurvivesTheWire sends every kind of flow of ours through a
// flow stats reply's encoding and libOpenflow's parser: the flow must keep
// its ID, whatever the order of its match fields.
func TestFlowIDSurvivesTheWire(t *testing.T) {
	mods := testFlowMods(t)
	reply := &openflow13.MultipartReply{Header: openflow13.NewOfp13Header(), Type: openflow13.MultipartType_Flow}
	reply.Header.Type = openflow13.Type_MultiPartReply
	for _, fm := range mods {
		reply.Body = append(reply.Body, flowStatsOf(fm))
	}
	wire, err := reply.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := openflow13.Parse(wire)
	if err != nil {
		t.Fatal(err)
	}
	parsed := msg.(*openflow13.MultipartReply)
	if len(parsed.Body) != len(mods) {
		t.Fatalf("parsed %d flows, want %d", len(parsed.Body), len(mods))
	}
	seen := map[flowID]bool{}
	for i, m := range parsed.Body {
		id, err := flowStatsID(m.(*openflow13.FlowStats))
		if err != nil {
			t.Fatal(err)
		}
		if want := mustFlowModID(t, mods[i]); id != want {
			t.Errorf("flow %d: ID after the wire\n %s\nwant\n %s", i, id, want)
		}
		if seen[id] {
			t.Errorf("flow %d: ID %s not unique", i, id)
		}
		seen[id] = true
	}
}

// TestResponderMatchHasTheFlowsID: the check lists wanted flows by their
// matches alone, so a match and its full flow must have one ID.
func TestResponderMatchHasTheFlowsID(t *testing.T) {
	p := testPipeline()
	for _, gw := range []string{"10.222.2.1", "fd00:10:222:2::1", "::1:0:0:1"} {
		full, err := p.responderFlow(net.ParseIP(gw))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := mustFlowModID(t, p.responderMatch(net.ParseIP(gw))), mustFlowModID(t, full); got != want {
			t.Errorf("gateway %s: match ID %s, flow ID %s", gw, got, want)
		}
	}
}

func TestFlowIDTellsFlowsApart(t *testing.T) {
	p := testPipeline()
	a, _ := p.responderFlow(net.ParseIP("10.222.2.1"))
	b, _ := p.responderFlow(net.ParseIP("10.222.2.2"))
	if mustFlowModID(t, a) == mustFlowModID(t, b) {
		t.Error("responders of two gateways have one ID")
	}
	other := pipeline{round: 8, virtualMAC: checkMAC}
	c, _ := other.responderFlow(net.ParseIP("10.222.2.1"))
	if mustFlowModID(t, a) == mustFlowModID(t, c) {
		t.Error("a responder of another round has the same ID")
	}
	bad := newFlowMod(ArpResponderTable, 1, 0, openflow13.FC_ADD)
	bad.Match.Fields = append(bad.Match.Fields, openflow13.MatchField{Class: openflow13.OXM_CLASS_OPENFLOW_BASIC, Field: 99})
	if _, err := flowModID(bad); err == nil {
		t.Error("a match field without value got an ID")
	}
}

// TestDescribeFlowMirrorsBaseFlows: describeFlow names base flows by their
// index in ExpectedBaseFlows, so both lists must stay in step.
func TestDescribeFlowMirrorsBaseFlows(t *testing.T) {
	p := testPipeline()
	mods, texts := p.baseFlows(), ExpectedBaseFlows(p.round, p.virtualMAC)
	if len(mods) != len(texts) {
		t.Fatalf("%d base flows, %d expected ones", len(mods), len(texts))
	}
	for i := range mods {
		if mods[i].TableId != texts[i].Table || mods[i].Priority != texts[i].Priority || mods[i].Cookie != texts[i].Cookie {
			t.Errorf("base flow %d: table %d priority %d cookie %#x, ExpectedBaseFlows says %s",
				i, mods[i].TableId, mods[i].Priority, mods[i].Cookie, texts[i])
		}
	}
	c := &OFClient{pipe: p, virtualMAC: checkMAC}
	if got, want := c.describeFlow(wantedBase(p, 1)), "table=0,priority=200,icmp6,icmp_type=135"; got != want {
		t.Errorf("describeFlow(base 1) = %q, want %q", got, want)
	}
	if got, want := c.describeFlow(wantedGateway(p, "10.222.2.1")), "table=20,priority=200,arp,arp_tpa=10.222.2.1,arp_op=1"; got != want {
		t.Errorf("describeFlow(responder) = %q, want %q", got, want)
	}
}

// part is one part of a flow stats reply to xid holding mods.
func part(xid uint32, more bool, mods ...*openflow13.FlowMod) *openflow13.MultipartReply {
	r := &openflow13.MultipartReply{Type: openflow13.MultipartType_Flow}
	r.Xid = xid
	if more {
		r.Flags = openflow13.OFPMPF_REPLY_MORE
	}
	for _, fm := range mods {
		r.Body = append(r.Body, flowStatsOf(fm))
	}
	return r
}

func idSet(t *testing.T, mods ...*openflow13.FlowMod) map[flowID]bool {
	t.Helper()
	out := map[flowID]bool{}
	for _, fm := range mods {
		out[mustFlowModID(t, fm)] = true
	}
	return out
}

func containsAll(want map[flowID]bool) func(map[flowID]bool) bool {
	return func(seen map[flowID]bool) bool {
		for id := range want {
			if !seen[id] {
				return false
			}
		}
		return true
	}
}

type waitResult struct {
	seen    map[flowID]bool
	err     error
	elapsed time.Duration
}

func waitAsync(ctx context.Context, d *flowStatsDump, complete func(map[flowID]bool) bool, settle time.Duration) <-chan waitResult {
	done := make(chan waitResult, 1)
	start := time.Now()
	go func() {
		seen, err := d.wait(ctx, complete, settle)
		done <- waitResult{seen, err, time.Since(start)}
	}()
	return done
}

// TestDumpWaitsForPartsAfterTheLast delivers the last part of a reply
// before an earlier one, as libOpenflow's parser goroutines may: the dump
// must not end at the last part while a wanted flow is unseen, and must end
// as soon as it is seen.
func TestDumpWaitsForPartsAfterTheLast(t *testing.T) {
	mods := testFlowMods(t)
	var col flowStatsCollector
	d := col.register([]uint32{101, 102})
	done := waitAsync(context.Background(), d, containsAll(idSet(t, mods...)), time.Minute)

	col.deliver(part(101, false, mods[3:6]...))
	col.deliver(part(102, false, mods[6:]...))
	select {
	case r := <-done:
		t.Fatalf("dump ended before the early part arrived: %v", r)
	case <-time.After(50 * time.Millisecond):
	}
	col.deliver(part(101, true, mods[:3]...))
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(r.seen) != len(mods) {
			t.Fatalf("saw %d flows, want %d", len(r.seen), len(mods))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dump did not end once every flow was there")
	}
}

// TestDumpWithMissingFlowEndsAfterSettle: when a wanted flow really is
// missing, the dump ends a settle period after the last part.
func TestDumpWithMissingFlowEndsAfterSettle(t *testing.T) {
	mods := testFlowMods(t)
	var col flowStatsCollector
	d := col.register([]uint32{201})
	const settle = 100 * time.Millisecond
	done := waitAsync(context.Background(), d, containsAll(idSet(t, mods...)), settle)
	col.deliver(part(201, true, mods[:2]...))
	col.deliver(part(201, false, mods[3:]...))
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.elapsed < settle {
		t.Errorf("dump ended after %s, before the settle period (%s)", r.elapsed, settle)
	}
	if r.seen[mustFlowModID(t, mods[2])] || len(r.seen) != len(mods)-1 {
		t.Errorf("saw %d flows (missing one seen: %t), want %d", len(r.seen), r.seen[mustFlowModID(t, mods[2])], len(mods)-1)
	}
}

func TestDumpWithoutLastPartTimesOut(t *testing.T) {
	var col flowStatsCollector
	d := col.register([]uint32{301, 302})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := waitAsync(ctx, d, func(map[flowID]bool) bool { return true }, time.Minute)
	col.deliver(part(301, false))
	r := <-done
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", r.err)
	}
}

// TestCollectorIgnoresOtherReplies: replies to unknown xids, to requests of
// a dump that ended, and of other multipart types are dropped, and
// delivering never blocks, whoever waits.
func TestCollectorIgnoresOtherReplies(t *testing.T) {
	mods := testFlowMods(t)
	var col flowStatsCollector
	col.deliver(part(401, false, mods...)) // nothing registered yet
	d := col.register([]uint32{402})
	for i := 0; i < 100; i++ {
		col.deliver(part(403, false, mods...))
	}
	col.deliver(&openflow13.MultipartReply{Type: openflow13.MultipartType_Aggregate, Body: []util.Message{openflow13.NewAggregateStats()}, Header: openflow13.NewOfp13Header()})
	col.deliver(nil)
	for i := 0; i < 100; i++ {
		col.deliver(part(402, true, mods[0]))
	}
	col.deliver(part(402, false, mods[1]))
	seen, err := d.wait(context.Background(), func(map[flowID]bool) bool { return true }, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := idSet(t, mods[0], mods[1]); len(seen) != len(want) {
		t.Fatalf("saw %d flows, want %d", len(seen), len(want))
	}
	col.unregister([]uint32{402})
	col.deliver(part(402, false, mods...)) // late: dropped
	if flows, _ := d.since(0); len(flows) != 101 {
		t.Fatalf("dump holds %d flows after a late part, want 101", len(flows))
	}
}

func TestFlowStatsRequestSelectsTableAndRound(t *testing.T) {
	req := flowStatsRequest(NdpResponderTable, 0x1234)
	body := req.Body.(*openflow13.FlowStatsRequest)
	if req.Type != openflow13.MultipartType_Flow || req.Header.Type != openflow13.Type_MultiPartRequest {
		t.Errorf("request type %d/%d", req.Header.Type, req.Type)
	}
	if body.TableId != NdpResponderTable || body.Cookie != 0x1234<<48 || body.CookieMask != RoundMask {
		t.Errorf("request selects table %d cookie %#x/%#x", body.TableId, body.Cookie, body.CookieMask)
	}
	if other := flowStatsRequest(NdpResponderTable, 0x1234); other.Xid == req.Xid {
		t.Error("two requests share an xid")
	}
}

func TestMissingFlows(t *testing.T) {
	p := testPipeline()
	wanted := map[flowID]WantedFlow{}
	have := map[flowID]bool{}
	for i, fm := range p.baseFlows() {
		id := mustFlowModID(t, fm)
		wanted[id], have[id] = wantedBase(p, i), true
	}
	for _, gw := range []string{"10.222.2.1", "fd00:10:222:2::1"} {
		id := mustFlowModID(t, p.responderMatch(net.ParseIP(gw)))
		wanted[id], have[id] = wantedGateway(p, gw), true
	}
	if got := missingFlows(wanted, have); len(got) != 0 {
		t.Fatalf("missing %v from a full bridge", got)
	}
	delete(have, mustFlowModID(t, p.baseFlows()[4]))
	delete(have, mustFlowModID(t, p.responderMatch(net.ParseIP("fd00:10:222:2::1"))))
	have["table=20,priority=5,cookie=0x0,match=foreign"] = true
	got := missingFlows(wanted, have)
	// Sorted by ID: table 20 before table 21.
	if len(got) != 2 || got[0].Gateway != nil || got[0].base != 4 || !got[1].Gateway.Equal(net.ParseIP("fd00:10:222:2::1")) {
		t.Fatalf("missing %v, want base flow 4 and the NDP responder", got)
	}
}

func TestRepairFlowsBeforeInitializeDoesNothing(t *testing.T) {
	c := NewOFClient("br-int", "/nonexistent.mgmt", checkMAC)
	n, err := c.RepairFlows()
	if n != 0 || err != nil {
		t.Fatalf("RepairFlows() = %d, %v; want 0, nil", n, err)
	}
}

func TestRepairFlowsWhileDisconnectedFails(t *testing.T) {
	c := NewOFClient("br-int", "/nonexistent.mgmt", checkMAC)
	c.pipe, c.initialized = testPipeline(), true
	if _, err := c.RepairFlows(); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("RepairFlows() error = %v, want not connected", err)
	}
}

// TestRestoreSkipsFlowsNoLongerWanted: a responder removed while the bridge
// was read, or flows of a round that was replaced meanwhile, are not added
// back (nothing is sent: the client has no connection here).
func TestRestoreSkipsFlowsNoLongerWanted(t *testing.T) {
	c := NewOFClient("br-int", "/nonexistent.mgmt", checkMAC)
	c.pipe, c.initialized = testPipeline(), true
	c.nodeFlows["worker2"] = map[string]net.IP{"10.222.2.1": net.ParseIP("10.222.2.1").To4()}
	round, wanted, err := c.snapshotWantedFlows()
	if err != nil {
		t.Fatal(err)
	}
	if len(wanted) != len(c.pipe.baseFlows())+1 {
		t.Fatalf("%d wanted flows, want the base flows and one responder", len(wanted))
	}
	responder, ok := wanted[mustFlowModID(t, c.pipe.responderMatch(net.ParseIP("10.222.2.1")))]
	if !ok {
		t.Fatal("responder not among the wanted flows")
	}
	delete(c.nodeFlows, "worker2")
	if names, err := c.restoreFlows(round, []WantedFlow{responder}); names != nil || err != nil {
		t.Fatalf("restoreFlows of a removed responder = %v, %v; want nothing", names, err)
	}
	c.pipe.round++
	if names, err := c.restoreFlows(round, []WantedFlow{wantedBase(testPipeline(), 0)}); names != nil || err != nil {
		t.Fatalf("restoreFlows of an earlier round = %v, %v; want nothing", names, err)
	}
}

func TestRunFlowCheckSkipsWhileDisconnectedAndStops(t *testing.T) {
	c := NewOFClient("br-int", "/nonexistent.mgmt", checkMAC)
	c.pipe, c.initialized = testPipeline(), true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.RunFlowCheck(ctx, time.Millisecond)
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunFlowCheck did not return after its context ended")
	}
}

func TestFirstFew(t *testing.T) {
	var names []string
	for i := 0; i < 12; i++ {
		names = append(names, strconv.Itoa(i))
		got := firstFew(names)
		if i < maxLoggedFlows && len(got) != i+1 {
			t.Errorf("firstFew of %d names = %v", i+1, got)
		}
	}
	got := firstFew(names)
	if len(got) != maxLoggedFlows+1 || got[maxLoggedFlows] != "and 2 more" || len(names) != 12 || names[maxLoggedFlows] != "10" {
		t.Errorf("firstFew of 12 names = %v (names now %v)", got, names)
	}
}
