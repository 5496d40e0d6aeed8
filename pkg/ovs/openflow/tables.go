package openflow

import (
	"sort"
	"strings"
)

// tableNames are the names of the pipeline's tables, as operators see them
// in agentctl's output.
var tableNames = map[uint8]string{
	ClassifierTable:   "Classifier",
	ArpResponderTable: "ArpResponder",
	NdpResponderTable: "NdpResponder",
	NdpTllTable:       "NdpResponderTll",
}

// TableName returns the name of one of the pipeline's tables ("Classifier"
// for 0, "ArpResponder" for 20, "NdpResponder" for 21, "NdpResponderTll"
// for 22), or "" for a table the agent does not use.
func TableName(id uint8) string { return tableNames[id] }

// TableByName returns the ID of the pipeline table with the given name,
// compared case-insensitively.
func TableByName(name string) (uint8, bool) {
	for id, n := range tableNames {
		if strings.EqualFold(n, name) {
			return id, true
		}
	}
	return 0, false
}

// Tables returns the IDs of the pipeline's tables, in order.
func Tables() []uint8 {
	ids := make([]uint8, 0, len(tableNames))
	for id := range tableNames {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}
