package openflow

import (
	"strings"

	"github.com/contiv/libOpenflow/openflow13"
)

// flowSpec describes one flow of the pipeline once: where it goes, what it
// matches and what it does. Everything else is rendered from it: the
// OpenFlow 1.3 messages the client sends (addMessage, deleteMessage), the
// flow's identity in a dump (id) and its text as `ovs-ofctl dump-flows`
// prints it (text), which agentctl check compares with the bridge.
//
// Match terms and actions render both ways themselves (matchterms.go,
// flowactions.go), so a flow written with them cannot say one thing on the
// wire and another in agentctl.
type flowSpec struct {
	table    uint8
	priority uint16
	cookie   uint64
	// match is the flow's match, in OXM order (prerequisites first);
	// empty matches every packet.
	match []matchTerm
	// actions are applied in order (OpenFlow's apply-actions
	// instruction).
	actions []flowAction
	// next is the table the packet continues in after the actions
	// (goto_table), 0 for none: goto_table only goes forward, so table 0
	// is never a target. A flow with neither actions nor next drops.
	next uint8
}

// addMessage returns the flow mod that adds (or replaces) the flow.
func (s flowSpec) addMessage() *openflow13.FlowMod {
	// No instruction at all is OpenFlow 1.3's drop.
	fm := s.matchMessage(s.cookie, openflow13.FC_ADD)
	if len(s.actions) > 0 {
		instr := openflow13.NewInstrApplyActions()
		for _, a := range s.actions {
			// AddAction only fails for a nil action.
			_ = instr.AddAction(a.message(), false)
		}
		fm.AddInstruction(instr)
	}
	if s.next != 0 {
		fm.AddInstruction(openflow13.NewInstrGotoTable(s.next))
	}
	return fm
}

// deleteMessage returns the flow mod that removes the flow, whatever its
// cookie round: a strict delete by table, priority and match.
func (s flowSpec) deleteMessage() *openflow13.FlowMod {
	return s.matchMessage(noCookieFilter, openflow13.FC_DELETE_STRICT)
}

// matchMessage returns a flow mod with the flow's table, priority and
// match, and no instructions.
func (s flowSpec) matchMessage(cookie uint64, command uint8) *openflow13.FlowMod {
	fm := newFlowMod(s.table, s.priority, cookie, command)
	for _, t := range s.match {
		for _, f := range t.fields {
			fm.Match.AddField(f)
		}
	}
	return fm
}

// id returns the flow's identity in a dump (see flowID). It needs only the
// table, priority, cookie and match: a spec built without actions has the
// same.
func (s flowSpec) id() (flowID, error) {
	return flowModID(s.matchMessage(s.cookie, openflow13.FC_ADD))
}

// text returns the flow as `ovs-ofctl dump-flows --no-stats` prints it.
func (s flowSpec) text() FlowText {
	match := make([]string, len(s.match))
	for i, t := range s.match {
		match[i] = t.text
	}
	var actions []string
	for _, a := range s.actions {
		actions = append(actions, a.text())
	}
	if s.next != 0 {
		// ovs-ofctl's default syntax is OpenFlow 1.0 with Nicira
		// extensions, which has no goto_table.
		actions = append(actions, resubmitText(s.next))
	}
	if len(actions) == 0 {
		actions = []string{"drop"}
	}
	return FlowText{
		Cookie:   s.cookie,
		Table:    s.table,
		Priority: s.priority,
		Match:    strings.Join(match, ","),
		Actions:  strings.Join(actions, ","),
	}
}

// deleteByCookie removes every flow of table whose cookie matches value in
// the bits of mask.
func deleteByCookie(table uint8, value, mask uint64) *openflow13.FlowMod {
	fm := newFlowMod(table, 0, value, openflow13.FC_DELETE)
	fm.CookieMask = mask
	return fm
}

func newFlowMod(table uint8, priority uint16, cookie uint64, command uint8) *openflow13.FlowMod {
	fm := openflow13.NewFlowMod()
	fm.TableId = table
	fm.Priority = priority
	fm.Cookie = cookie
	// NewFlowMod leaves out_port and out_group at ANY, so deletes are not
	// restricted to an output.
	fm.Command = command
	return fm
}
