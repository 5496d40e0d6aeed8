package ovsconfig

import "github.com/ovn-org/libovsdb/model"

// The models below map only the columns this package reads or writes.
// libovsdb validates them against the server's schema on Connect, so a
// misspelt column or a wrong Go type fails there rather than at the first
// transaction.

const (
	tableOpenvSwitch = "Open_vSwitch"
	tableBridge      = "Bridge"
	tablePort        = "Port"
	tableInterface   = "Interface"
)

// ovsRoot is the Open_vSwitch table's single row, which roots the bridges:
// a Bridge that it does not reference is garbage collected.
type ovsRoot struct {
	UUID    string   `ovsdb:"_uuid"`
	Bridges []string `ovsdb:"bridges"`
}

type bridgeRow struct {
	UUID         string   `ovsdb:"_uuid"`
	Name         string   `ovsdb:"name"`
	DatapathType string   `ovsdb:"datapath_type"`
	Protocols    []string `ovsdb:"protocols"`
	// FailMode is optional (0 or 1 value), which libovsdb maps to a
	// pointer.
	FailMode    *string           `ovsdb:"fail_mode"`
	Ports       []string          `ovsdb:"ports"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

type portRow struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Interfaces  []string          `ovsdb:"interfaces"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

type interfaceRow struct {
	UUID string `ovsdb:"_uuid"`
	Name string `ovsdb:"name"`
	Type string `ovsdb:"type"`
}

func newClientDBModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		tableOpenvSwitch: &ovsRoot{},
		tableBridge:      &bridgeRow{},
		tablePort:        &portRow{},
		tableInterface:   &interfaceRow{},
	})
}
