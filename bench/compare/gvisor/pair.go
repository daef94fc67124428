package main

import (
	"context"
	"fmt"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// The two stacks' addresses (RFC 2544's benchmarking range, as shardstack's demo uses).
var (
	serverAddr = tcpip.AddrFrom4([4]byte{198, 18, 0, 1})
	clientAddr = tcpip.AddrFrom4([4]byte{198, 18, 0, 2})
)

const (
	serverPort = 8080
	nicID      = 1
	mtu        = 1500
	prefixLen  = 24
)

// The link kinds --link accepts.
const (
	linkChannel = "channel" // outbound queues drained by one goroutine per direction
	linkPipe    = "pipe"    // a write on one side is delivered inline to the other
)

// pair is two gVisor stacks in one process wired back to back.
type pair struct {
	server, client *stack.Stack
	cancel         context.CancelFunc
	closers        []stack.LinkEndpoint
	closeOnce      sync.Once
}

// newPair builds the two stacks on the given link kind. queue is the channel link's
// outbound queue length per side; a full queue drops packets as a NIC ring would.
func newPair(link string, queue int) (*pair, error) {
	var a, b stack.LinkEndpoint
	p := &pair{cancel: func() {}}
	switch link {
	case linkChannel:
		ca := channel.New(queue, mtu, "")
		cb := channel.New(queue, mtu, "")
		ctx, cancel := context.WithCancel(context.Background())
		p.cancel = cancel
		go pump(ctx, ca, cb)
		go pump(ctx, cb, ca)
		a, b = ca, cb
	case linkPipe:
		a, b = pipe.New("", "", mtu)
	default:
		return nil, fmt.Errorf("gvisor: unknown --link %q (want %s or %s)", link, linkChannel, linkPipe)
	}
	p.closers = []stack.LinkEndpoint{a, b}
	var err error
	if p.server, err = newStack(a, serverAddr); err != nil {
		p.close()
		return nil, err
	}
	if p.client, err = newStack(b, clientAddr); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// newStack builds one IPv4 + TCP stack with gVisor's default options on ep. Neither link
// kind has a link header (ARP hardware type "none"), so no neighbour resolution happens.
func newStack(ep stack.LinkEndpoint, addr tcpip.Address) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := s.CreateNIC(nicID, ep); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("gvisor: create NIC: %s", err)
	}
	pa := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: addr, PrefixLen: prefixLen},
	}
	if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("gvisor: add address %s: %s", addr, err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: nicID}})
	return s, nil
}

// pump moves every packet that one channel endpoint sends into the other, as a wire
// would, until ctx ends. The packet is rebuilt from its bytes so that the receiving
// stack parses it afresh, with none of the sender's header offsets.
func pump(ctx context.Context, from, to *channel.Endpoint) {
	for {
		pkt := from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		proto := pkt.NetworkProtocolNumber
		in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: pkt.ToBuffer()})
		pkt.DecRef()
		to.InjectInbound(proto, in)
		in.DecRef()
	}
}

// close stops the pumps and both stacks. It does not wait for the stacks' endpoints to
// finish (Destroy would), because a run leaves up to a minute of TIME-WAIT behind it.
// Only the first call does anything.
func (p *pair) close() {
	p.closeOnce.Do(p.closeNow)
}

func (p *pair) closeNow() {
	p.cancel()
	if p.client != nil {
		p.client.Close()
	}
	if p.server != nil {
		p.server.Close()
	}
	for _, ep := range p.closers {
		ep.Close()
	}
}
