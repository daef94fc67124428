//go:build !linux

package afpacket

import (
	"errors"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
)

// ErrUnsupported is Open's error on systems without AF_PACKET.
var ErrUnsupported = errors.New("afpacket: AF_PACKET sockets exist only on Linux")

// Port is an AF_PACKET port; on this system Open never returns one.
type Port struct{}

// Open returns ErrUnsupported: AF_PACKET is Linux's.
func Open(cfg Config) (*Port, error) { return nil, ErrUnsupported }

// Name implements dpdkshim.Port.
func (p *Port) Name() string { return "afpacket" }

// MAC implements dpdkshim.Port.
func (p *Port) MAC() header.MAC { return header.MAC{} }

// MTU implements dpdkshim.Port.
func (p *Port) MTU() int { return 0 }

// NumQueues implements dpdkshim.Port.
func (p *Port) NumQueues() int { return 0 }

// Steering implements dpdkshim.Port.
func (p *Port) Steering() dpdkshim.Steering { return nil }

// Offloads implements dpdkshim.Port.
func (p *Port) Offloads() dpdkshim.Offloads { return dpdkshim.Offloads{} }

// RxWait implements dpdkshim.Port.
func (p *Port) RxWait(q int) dpdkshim.Wait { return dpdkshim.NoWait }

// RxBurst implements dpdkshim.Port.
func (p *Port) RxBurst(q int, pkts []*dpdkshim.Packet) int { return 0 }

// TxBurst implements dpdkshim.Port.
func (p *Port) TxBurst(q int, pkts []*dpdkshim.Packet) int { return 0 }

// Pool implements dpdkshim.Port.
func (p *Port) Pool(q int) *dpdkshim.Pool { return nil }

// Close implements dpdkshim.Port.
func (p *Port) Close() error { return nil }

// UseQueues implements dpdkshim.QueueLimiter.
func (p *Port) UseQueues(n int) {}

// Stats returns no counters.
func (p *Port) Stats() []QueueStats { return nil }

// FanoutID returns 0.
func (p *Port) FanoutID() uint16 { return 0 }
