package link

import (
	"github.com/shardstack/shardstack/pkg/dpdkshim/afpacket"
)

// The AF_PACKET backend: afpacket:IFACE with options rxring (TPACKET_V3 receive ring),
// txring (PACKET_TX_RING), bypass (PACKET_QDISC_BYPASS), novnet (no virtio-net header),
// gso (runs of a flow's TCP segments leave as GSO super-packets, which the kernel
// segments; not with novnet or bypass), burst=N (messages per system call), seed=N (the
// steering seed).
func init() {
	Register("afpacket", func(sp *Spec, p Params) (*Link, error) {
		burst, err := sp.Int("burst", afpacket.DefaultBurst)
		if err != nil {
			return nil, err
		}
		seed, err := sp.Int("seed", 0)
		if err != nil {
			return nil, err
		}
		cfg := afpacket.Config{
			Interface:   sp.Device,
			Queues:      p.Queues,
			Burst:       burst,
			RxRing:      sp.Flag("rxring"),
			TxRing:      sp.Flag("txring"),
			QdiscBypass: sp.Flag("bypass"),
			NoVnetHdr:   sp.Flag("novnet"),
			GSO:         sp.Flag("gso"),
			SteerSeed:   uint32(seed),
		}
		if err := sp.Done(); err != nil {
			return nil, err
		}
		port, err := afpacket.Open(cfg)
		if err != nil {
			return nil, err
		}
		return &Link{Port: port, Stats: func() []QueueStats {
			var out []QueueStats
			for _, q := range port.Stats() {
				out = append(out, QueueStats{
					RxPackets: q.RxPackets, RxBytes: q.RxBytes, RxSyscalls: q.RxSyscalls, RxEmpty: q.RxEmpty,
					TxPackets: q.TxPackets, TxBytes: q.TxBytes, TxSyscalls: q.TxSyscalls,
					TxGSOPackets: q.TxSuper,
					KernelDrops:  q.RxKernelDrops,
					Errors:       q.RxNoBuffer + q.RxTruncated + q.RxErrors + q.TxDropped + q.TxErrors,
				})
			}
			return out
		}}, nil
	})
}
