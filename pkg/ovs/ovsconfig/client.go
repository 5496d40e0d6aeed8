package ovsconfig

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"
	"k8s.io/klog/v2"

	"github.com/noderoute/noderoute/pkg/ovs/openflow"
)

const (
	// connectTimeout bounds New when the caller's context has no
	// deadline: a socket that accepts but never answers must not hang
	// agent start-up forever.
	connectTimeout = 10 * time.Second
	// reconnectTimeout bounds each reconnection attempt after the
	// connection drops (e.g. ovsdb-server restarted with OVS).
	reconnectTimeout = 5 * time.Second
	// minReconnectDelay and maxReconnectDelay bound the wait between
	// reconnection attempts (before jitter): a restarted ovsdb-server is
	// usually back within a second, and a long outage costs one dial
	// every few seconds, as for the OpenFlow connection.
	minReconnectDelay = 100 * time.Millisecond
	maxReconnectDelay = 2 * time.Second
	// maxRoundAttempts bounds NextFlowRound's read-check-write loop; more
	// than a couple of conflicts means something is rewriting the bridge's
	// external_ids in a loop.
	maxRoundAttempts = 5
)

// bridgeProtocols are the OpenFlow versions the bridge accepts: 1.3 for the
// agent's flows, 1.0 so that plain ovs-ofctl (which speaks 1.0 unless told
// otherwise) can still be used for debugging.
var bridgeProtocols = []string{"OpenFlow10", "OpenFlow13"}

const (
	failModeSecure = "secure"
	ifaceInternal  = "internal"
)

// Client is the OVSDB-backed Interface.
//
// It keeps no cache and sets up no monitor: every method reads the rows it
// needs with a select in its own transaction. libovsdb's cache is filled by
// update notifications that arrive asynchronously, so right after a
// transaction (ours, or an ovs-vsctl's) it may still show the old rows;
// reading fresh rows keeps EnsureBridge and NextFlowRound correct without
// waiting for the cache to catch up, and these calls are rare (start-up).
type Client struct {
	ovs      client.Client
	endpoint string
}

var _ Interface = (*Client)(nil)

// New connects to the ovsdb-server listening on the unix socket dbSock (a
// path; a full "unix:..." endpoint is accepted too). The connection
// reconnects by itself if the server restarts; a transaction issued while it
// is down blocks until it is back or ctx ends.
func New(ctx context.Context, dbSock string) (*Client, error) {
	endpoint := dbSock
	if !strings.HasPrefix(endpoint, "unix:") {
		endpoint = "unix:" + dbSock
	}
	dbModel, err := newClientDBModel()
	if err != nil {
		return nil, fmt.Errorf("building OVSDB model: %w", err)
	}
	// libovsdb's default logger writes to stderr at verbosity 5 (every
	// transaction); route it through klog so -v controls it.
	logger := klog.Background().WithName("libovsdb")
	ovs, err := client.NewOVSDBClient(dbModel,
		client.WithEndpoint(endpoint),
		client.WithLogger(&logger),
		client.WithReconnect(reconnectTimeout, reconnectBackoff()),
	)
	if err != nil {
		return nil, fmt.Errorf("creating OVSDB client for %s: %w", endpoint, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, connectTimeout)
		defer cancel()
	}
	if err := ovs.Connect(ctx); err != nil {
		// Close releases what Connect set up before failing (it may
		// fail after dialing, e.g. on a schema mismatch).
		ovs.Close()
		return nil, fmt.Errorf("connecting to OVSDB at %s (is ovsdb-server running?): %w", endpoint, err)
	}
	return &Client{ovs: ovs, endpoint: endpoint}, nil
}

// reconnectBackoff is libovsdb's schedule of reconnection attempts. Its
// default (backoff.NewExponentialBackOff) waits up to 60 s between attempts
// and gives up after 15 minutes, and libovsdb v0.7.0 panics in its own
// goroutine when the schedule gives up, which would kill the agent after a
// long ovsdb-server outage. This one never gives up and never waits more
// than maxReconnectDelay (plus up to 50% jitter).
func reconnectBackoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = minReconnectDelay
	b.MaxInterval = maxReconnectDelay
	b.MaxElapsedTime = 0
	return b
}

// Close closes the connection; it does not reconnect afterwards.
func (c *Client) Close() {
	c.ovs.Close()
}

// EnsureBridge implements Interface. It writes nothing when the bridge and
// its gateway port are already as wanted, so it can run on every start
// without disturbing vswitchd.
func (c *Client) EnsureBridge(ctx context.Context, cfg BridgeConfig) error {
	ops, err := c.bridgeOps(ctx, cfg)
	if err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	if _, err := c.transact(ctx, ops); err != nil {
		return fmt.Errorf("ensuring bridge %s with port %s: %w", cfg.Name, cfg.GatewayPort, err)
	}
	klog.FromContext(ctx).Info("Configured OVS bridge", "bridge", cfg.Name, "datapathType", cfg.DatapathType, "gatewayPort", cfg.GatewayPort)
	return nil
}

// bridgeOps returns the operations that bring the database to cfg, none if
// it is there already.
func (c *Client) bridgeOps(ctx context.Context, cfg BridgeConfig) ([]ovsdb.Operation, error) {
	if cfg.Name == "" || cfg.GatewayPort == "" {
		return nil, fmt.Errorf("invalid bridge config %+v: bridge and gateway port names are required", cfg)
	}
	wantDP := string(cfg.DatapathType)
	if wantDP == "" {
		wantDP = string(DatapathSystem)
	}

	br, err := c.getBridge(ctx, cfg.Name)
	if err != nil {
		return nil, err
	}
	if br == nil {
		return c.createBridgeOps(ctx, cfg, wantDP)
	}

	var ops []ovsdb.Operation
	upd := &bridgeRow{UUID: br.UUID}
	var fields []any
	// OVS takes an empty datapath_type as "system".
	if dp := br.DatapathType; dp != wantDP && !(dp == "" && wantDP == string(DatapathSystem)) {
		upd.DatapathType = wantDP
		fields = append(fields, &upd.DatapathType)
	}
	if !sameSet(br.Protocols, bridgeProtocols) {
		upd.Protocols = bridgeProtocols
		fields = append(fields, &upd.Protocols)
	}
	if br.FailMode == nil || *br.FailMode != failModeSecure {
		mode := failModeSecure
		upd.FailMode = &mode
		fields = append(fields, &upd.FailMode)
	}
	if len(fields) > 0 {
		o, err := c.ovs.Where(upd).Update(upd, fields...)
		if err != nil {
			return nil, fmt.Errorf("building update of bridge %s: %w", cfg.Name, err)
		}
		ops = append(ops, o...)
	}
	if _, ok := br.ExternalIDs[RoundExternalID]; !ok && cfg.FlowRound != 0 {
		// A map insert adds the key only if it is absent, so a round
		// stored by someone else in the meantime wins, and the
		// other keys are left alone.
		mut := &bridgeRow{UUID: br.UUID}
		o, err := c.ovs.Where(mut).Mutate(mut, model.Mutation{
			Field:   &mut.ExternalIDs,
			Mutator: ovsdb.MutateOperationInsert,
			Value:   map[string]string{RoundExternalID: strconv.Itoa(int(cfg.FlowRound))},
		})
		if err != nil {
			return nil, fmt.Errorf("building insertion of flow round into bridge %s: %w", cfg.Name, err)
		}
		ops = append(ops, o...)
	}

	portOps, err := c.gatewayPortOps(ctx, br, cfg.GatewayPort)
	if err != nil {
		return nil, err
	}
	return append(ops, portOps...), nil
}

// createBridgeOps creates the bridge with its gateway port and roots it in
// Open_vSwitch, in one transaction so that a failure leaves nothing behind.
func (c *Client) createBridgeOps(ctx context.Context, cfg BridgeConfig, datapathType string) ([]ovsdb.Operation, error) {
	name, gwPort := cfg.Name, cfg.GatewayPort
	roots, err := selectRows[ovsRoot](ctx, c, tableOpenvSwitch)
	if err != nil {
		return nil, err
	}
	if len(roots) != 1 {
		return nil, fmt.Errorf("OVSDB at %s has %d Open_vSwitch rows, want 1 (database not initialized with ovs-vsctl init?)", c.endpoint, len(roots))
	}

	iface := &interfaceRow{UUID: "nr_gw_iface", Name: gwPort, Type: ifaceInternal}
	port := newGatewayPort(gwPort, iface)
	mode := failModeSecure
	br := &bridgeRow{
		UUID:         "nr_bridge",
		Name:         name,
		DatapathType: datapathType,
		Protocols:    bridgeProtocols,
		FailMode:     &mode,
		Ports:        []string{port.UUID},
		ExternalIDs:  map[string]string{OwnerExternalID: OwnerAgent},
	}
	if cfg.FlowRound != 0 {
		br.ExternalIDs[RoundExternalID] = strconv.Itoa(int(cfg.FlowRound))
	}
	ops, err := c.ovs.Create(iface, port, br)
	if err != nil {
		return nil, fmt.Errorf("building creation of bridge %s: %w", name, err)
	}
	root := &ovsRoot{UUID: roots[0].UUID}
	mut, err := c.ovs.Where(root).Mutate(root, model.Mutation{
		Field:   &root.Bridges,
		Mutator: ovsdb.MutateOperationInsert,
		Value:   []string{br.UUID},
	})
	if err != nil {
		return nil, fmt.Errorf("building insertion of bridge %s into Open_vSwitch: %w", name, err)
	}
	return append(ops, mut...), nil
}

// gatewayPortOps adds the internal gateway port to an existing bridge, or
// fixes its interface type, if needed.
func (c *Client) gatewayPortOps(ctx context.Context, br *bridgeRow, gwPort string) ([]ovsdb.Operation, error) {
	ports, err := selectRows[portRow](ctx, c, tablePort, ovsdb.NewCondition("name", ovsdb.ConditionEqual, gwPort))
	if err != nil {
		return nil, err
	}
	if len(ports) == 0 {
		iface := &interfaceRow{UUID: "nr_gw_iface", Name: gwPort, Type: ifaceInternal}
		port := newGatewayPort(gwPort, iface)
		ops, err := c.ovs.Create(iface, port)
		if err != nil {
			return nil, fmt.Errorf("building creation of port %s: %w", gwPort, err)
		}
		upd := &bridgeRow{UUID: br.UUID}
		mut, err := c.ovs.Where(upd).Mutate(upd, model.Mutation{
			Field:   &upd.Ports,
			Mutator: ovsdb.MutateOperationInsert,
			Value:   []string{port.UUID},
		})
		if err != nil {
			return nil, fmt.Errorf("building insertion of port %s into bridge %s: %w", gwPort, br.Name, err)
		}
		return append(ops, mut...), nil
	}

	port := ports[0]
	if !slices.Contains(br.Ports, port.UUID) {
		// Moving it could cut another component's traffic; leave the
		// decision to a human.
		return nil, fmt.Errorf("port %s exists but is not on bridge %s", gwPort, br.Name)
	}
	ifaces, err := selectRows[interfaceRow](ctx, c, tableInterface, ovsdb.NewCondition("name", ovsdb.ConditionEqual, gwPort))
	if err != nil {
		return nil, err
	}
	if len(ifaces) == 0 || !slices.Contains(port.Interfaces, ifaces[0].UUID) {
		return nil, fmt.Errorf("port %s on bridge %s has no interface named %s", gwPort, br.Name, gwPort)
	}
	if ifaces[0].Type == ifaceInternal {
		return nil, nil
	}
	upd := &interfaceRow{UUID: ifaces[0].UUID, Type: ifaceInternal}
	ops, err := c.ovs.Where(upd).Update(upd, &upd.Type)
	if err != nil {
		return nil, fmt.Errorf("building update of interface %s: %w", gwPort, err)
	}
	return ops, nil
}

// newGatewayPort is the row of a gateway port the agent creates, marked as
// the agent's (OwnerExternalID) so that cleanup may delete it.
func newGatewayPort(name string, iface *interfaceRow) *portRow {
	return &portRow{
		UUID:        "nr_gw_port",
		Name:        name,
		Interfaces:  []string{iface.UUID},
		ExternalIDs: map[string]string{OwnerExternalID: OwnerAgent},
	}
}

// RecordGatewayAddresses implements Interface. A map insert does not
// overwrite, so the key is deleted and inserted again in one transaction.
func (c *Client) RecordGatewayAddresses(ctx context.Context, gatewayPort string, addrs []string) error {
	ports, err := selectRows[portRow](ctx, c, tablePort, ovsdb.NewCondition("name", ovsdb.ConditionEqual, gatewayPort))
	if err != nil {
		return err
	}
	if len(ports) == 0 {
		return fmt.Errorf("record gateway addresses: port %s not found in OVSDB at %s", gatewayPort, c.endpoint)
	}
	want := strings.Join(addrs, ",")
	if ports[0].ExternalIDs[GatewayAddressesExternalID] == want {
		return nil
	}
	row := &portRow{UUID: ports[0].UUID}
	ops, err := c.ovs.Where(row).Mutate(row,
		model.Mutation{Field: &row.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: []string{GatewayAddressesExternalID}},
		model.Mutation{Field: &row.ExternalIDs, Mutator: ovsdb.MutateOperationInsert, Value: map[string]string{GatewayAddressesExternalID: want}},
	)
	if err != nil {
		return fmt.Errorf("building update of port %s external_ids: %w", gatewayPort, err)
	}
	if _, err := c.transact(ctx, ops); err != nil {
		return fmt.Errorf("record gateway addresses on port %s: %w", gatewayPort, err)
	}
	return nil
}

// NextFlowRound implements Interface. The read and the write are separate
// transactions; the write carries a wait on the external_ids it read, so if
// anyone changed them in between, nothing is written and it starts over.
// Two agents on one bridge therefore never get the same round.
func (c *Client) NextFlowRound(ctx context.Context, bridge string) (uint16, error) {
	logger := klog.FromContext(ctx)
	for attempt := 1; ; attempt++ {
		br, err := c.getBridge(ctx, bridge)
		if err != nil {
			return 0, err
		}
		if br == nil {
			return 0, fmt.Errorf("reading flow round: bridge %s not found in OVSDB at %s", bridge, c.endpoint)
		}

		var cur uint16
		if v, ok := br.ExternalIDs[RoundExternalID]; ok {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				// A bad value cannot be recovered; round 0 is
				// never used, so starting after it is safe.
				logger.Error(err, "Ignoring invalid flow round stored on bridge, starting from 1", "bridge", bridge, "key", RoundExternalID, "value", v)
			} else {
				cur = uint16(n)
			}
		}
		next := openflow.NextRound(cur)

		ops, err := c.roundOps(br, next)
		if err != nil {
			return 0, err
		}
		_, err = c.transact(ctx, ops)
		if err == nil {
			logger.V(2).Info("Stored flow round", "bridge", bridge, "previous", cur, "round", next)
			return next, nil
		}
		var timedOut *ovsdb.TimedOut
		if !errors.As(err, &timedOut) {
			return 0, fmt.Errorf("storing flow round %d on bridge %s: %w", next, bridge, err)
		}
		if attempt == maxRoundAttempts {
			return 0, fmt.Errorf("storing flow round on bridge %s: external_ids changed concurrently %d times in a row", bridge, attempt)
		}
		logger.V(2).Info("Bridge external_ids changed while storing flow round, retrying", "bridge", bridge, "attempt", attempt)
	}
}

// roundOps are: wait until the bridge's external_ids still equal what was
// read (failing at once otherwise), then write them back with the new round.
func (c *Client) roundOps(br *bridgeRow, next uint16) ([]ovsdb.Operation, error) {
	ids := make(map[string]string, len(br.ExternalIDs)+1)
	for k, v := range br.ExternalIDs {
		ids[k] = v
	}
	cond := &bridgeRow{UUID: br.UUID, ExternalIDs: br.ExternalIDs}
	if cond.ExternalIDs == nil {
		// The wait row must carry the column even when empty, or the
		// server would compare nothing.
		cond.ExternalIDs = map[string]string{}
	}
	noWait := 0
	wait, err := c.ovs.Where(cond).Wait(ovsdb.WaitConditionEqual, &noWait, cond, &cond.ExternalIDs)
	if err != nil {
		return nil, fmt.Errorf("building wait on bridge %s external_ids: %w", br.Name, err)
	}
	ids[RoundExternalID] = strconv.Itoa(int(next))
	upd := &bridgeRow{UUID: br.UUID, ExternalIDs: ids}
	update, err := c.ovs.Where(upd).Update(upd, &upd.ExternalIDs)
	if err != nil {
		return nil, fmt.Errorf("building update of bridge %s external_ids: %w", br.Name, err)
	}
	return append(wait, update...), nil
}

// getBridge returns the named bridge, nil if there is none.
func (c *Client) getBridge(ctx context.Context, name string) (*bridgeRow, error) {
	rows, err := selectRows[bridgeRow](ctx, c, tableBridge, ovsdb.NewCondition("name", ovsdb.ConditionEqual, name))
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return rows[0], nil
}

// selectRows reads the rows of table matching all of where (all rows if
// none), decoded into T, which must be the model registered for table.
func selectRows[T any](ctx context.Context, c *Client, table string, where ...ovsdb.Condition) ([]*T, error) {
	dbModel := c.ovs.Cache().DatabaseModel()
	info, err := dbModel.NewModelInfo(new(T))
	if err != nil {
		return nil, fmt.Errorf("model for table %s: %w", table, err)
	}
	columns := make([]string, 0, len(info.Metadata.Fields))
	for col := range info.Metadata.Fields {
		columns = append(columns, col)
	}
	op := ovsdb.Operation{Op: ovsdb.OperationSelect, Table: table, Where: where, Columns: columns}
	res, err := c.transact(ctx, []ovsdb.Operation{op})
	if err != nil {
		return nil, fmt.Errorf("reading table %s: %w", table, err)
	}
	out := make([]*T, 0, len(res[0].Rows))
	for i := range res[0].Rows {
		row := &res[0].Rows[i]
		uuid, _ := (*row)["_uuid"].(ovsdb.UUID)
		m, err := model.CreateModel(dbModel, table, row, uuid.GoUUID)
		if err != nil {
			return nil, fmt.Errorf("decoding %s row %s: %w", table, uuid.GoUUID, err)
		}
		t, ok := m.(*T)
		if !ok {
			return nil, fmt.Errorf("decoding %s row: got %T, want %T", table, m, t)
		}
		out = append(out, t)
	}
	return out, nil
}

// transact runs ops in one transaction and turns per-operation errors into
// one error that says what failed (libovsdb's own only counts them).
func (c *Client) transact(ctx context.Context, ops []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	res, err := c.ovs.Transact(ctx, ops...)
	if err != nil {
		return nil, fmt.Errorf("OVSDB transaction on %s: %w", c.endpoint, err)
	}
	opErrs, err := ovsdb.CheckOperationResults(res, ops)
	if err != nil {
		if len(opErrs) == 0 {
			return nil, fmt.Errorf("OVSDB transaction on %s: %w", c.endpoint, err)
		}
		errs := make([]error, 0, len(opErrs))
		for _, e := range opErrs {
			errs = append(errs, opError{e})
		}
		return nil, fmt.Errorf("OVSDB transaction on %s failed: %w", c.endpoint, errors.Join(errs...))
	}
	return res, nil
}

// opError names the operation that failed, which libovsdb's errors do not.
type opError struct{ ovsdb.OperationError }

func (e opError) Error() string {
	if op := e.Operation(); op != nil {
		return fmt.Sprintf("%s on %s: %v", op.Op, op.Table, e.OperationError)
	}
	return e.OperationError.Error()
}

func (e opError) Unwrap() error { return e.OperationError }

// sameSet reports whether a and b hold the same strings, in any order (OVSDB
// sets have no order).
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
