package openflow

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"time"

	"github.com/contiv/libOpenflow/common"
	"github.com/contiv/libOpenflow/openflow13"
	"github.com/contiv/libOpenflow/util"
	"github.com/wenyingd/ofnet/ofctrl"
	"k8s.io/klog/v2"
)

// Reconnect backoff: short at first (a restarted ovs-vswitchd is usually back
// within a second), capped so that a long OVS outage costs a dial attempt
// every few seconds and no more.
const (
	minReconnectDelay = 100 * time.Millisecond
	maxReconnectDelay = 3 * time.Second
	handshakeTimeout  = 5 * time.Second
)

// ofParser decodes OpenFlow 1.3 messages for libOpenflow's message stream.
type ofParser struct{}

// libOpenflow's decoders panic on some messages they do not fully know (a
// flow-stats reply holding a controller(userdata=...) action dereferences
// nil), and the stream parses on goroutines without a recover, so a panic
// would kill the agent. It becomes a parse error instead: the stream drops
// that message and goes on.
func (ofParser) Parse(b []byte) (msg util.Message, err error) {
	if len(b) == 0 || b[0] != openflow13.VERSION {
		return nil, fmt.Errorf("unsupported OpenFlow message version in %x", b)
	}
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("cannot decode OpenFlow message of type %d (%d bytes): %v", b[1], len(b), r)
		}
	}()
	return openflow13.Parse(b)
}

// dialSwitch connects to the bridge's management socket, negotiates OpenFlow
// 1.3 and hands the stream to an ofnet switch whose events go to app.
//
// We do this rather than use ofctrl.Controller because the Controller does
// not close its connection when deleted and ofnet keeps switches in a global
// table by datapath ID, so a second client of the same bridge in one process
// (a restarted agent in a test) would be handed the first one's switch.
// Here each connection gets its own switch, removed again on disconnect.
func dialSwitch(ctx context.Context, sock string, app ofctrl.AppInterface, ctrlID uint16) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("connect to OpenFlow socket %s: %w", sock, err)
	}
	stream := util.NewMessageStream(conn, ofParser{})
	hello, err := common.NewHello(openflow13.VERSION)
	if err != nil {
		conn.Close()
		return fmt.Errorf("build OpenFlow hello: %w", err)
	}
	stream.Outbound <- hello

	timeout := time.NewTimer(handshakeTimeout)
	defer timeout.Stop()
	for {
		select {
		case msg := <-stream.Inbound:
			switch m := msg.(type) {
			case *common.Hello:
				if m.Version != openflow13.VERSION {
					stream.Shutdown <- true
					return fmt.Errorf("OpenFlow handshake on %s: switch speaks version %d, need 1.3 (is OpenFlow13 in the bridge's protocols?)", sock, m.Version)
				}
				stream.Version = m.Version
				stream.Outbound <- openflow13.NewFeaturesRequest()
			case *openflow13.SwitchFeatures:
				ofctrl.NewSwitch(stream, m.DPID, app, nil, ctrlID)
				return nil
			case *openflow13.ErrorMsg:
				stream.Shutdown <- true
				return fmt.Errorf("OpenFlow handshake on %s: switch sent error type %d code %d (is OpenFlow13 in the bridge's protocols?)", sock, m.Type, m.Code)
			}
		case err := <-stream.Error:
			return fmt.Errorf("OpenFlow handshake on %s: %w", sock, err)
		case <-timeout.C:
			stream.Shutdown <- true
			return fmt.Errorf("OpenFlow handshake on %s: no answer within %s", sock, handshakeTimeout)
		case <-ctx.Done():
			stream.Shutdown <- true
			return ctx.Err()
		}
	}
}

// backoff doubles a delay up to maxReconnectDelay, with jitter so that the
// agents of many nodes do not retry in step.
func backoff(d time.Duration) time.Duration {
	d *= 2
	if d > maxReconnectDelay {
		d = maxReconnectDelay
	}
	return d/2 + time.Duration(rand.Int63n(int64(d/2)+1))
}

func logDialFailure(sock string, err error, retryIn time.Duration) {
	klog.ErrorS(err, "OpenFlow connection failed, retrying", "socket", sock, "retryIn", retryIn)
}
