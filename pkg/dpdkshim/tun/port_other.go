//go:build !linux

package tun

import (
	"errors"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
)

// ErrUnsupported is Open's error on systems without Linux's multi-queue TUN devices.
var ErrUnsupported = errors.New("tun: multi-queue TUN devices exist only on Linux")

// Port is a TUN port; on this system Open never returns one.
type Port struct{}

// Open returns ErrUnsupported.
func Open(cfg Config) (*Port, error) { return nil, ErrUnsupported }

// Name implements dpdkshim.Port.
func (p *Port) Name() string { return "tun" }

// Device returns the TUN device's name.
func (p *Port) Device() string { return "" }

// Created reports whether Open created the device.
func (p *Port) Created() bool { return false }

// SteeredBy says how the device spreads flows over the queues.
func (p *Port) SteeredBy() string { return "" }

// MAC implements dpdkshim.Port.
func (p *Port) MAC() header.MAC { return header.MAC{} }

// MTU implements dpdkshim.Port.
func (p *Port) MTU() int { return 0 }

// NumQueues implements dpdkshim.Port.
func (p *Port) NumQueues() int { return 0 }

// LinkType implements dpdkshim.LinkTyper.
func (p *Port) LinkType() dpdkshim.LinkType { return dpdkshim.LinkIP }

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

// Stats returns every queue's counters.
func (p *Port) Stats() []QueueStats { return nil }

// Close implements dpdkshim.Port.
func (p *Port) Close() error { return nil }
