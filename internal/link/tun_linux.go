package link

import (
	"github.com/shardstack/shardstack/pkg/dpdkshim/tun"
)

// The TUN backend: tun:NAME, a multi-queue TUN device (created if NAME is free, attached to
// if it is a persistent multi-queue device), with options vnet (the virtio-net header with
// checksum offload), gso (vnet and TSO both ways: 64 KiB super-packets), nosteer (the
// kernel's own steering instead of the eBPF program), mtu=N (set the device's MTU),
// qlen=N (its txqueuelen: packets each queue holds before the kernel drops; the kernel's
// default 500 becomes tun.DefaultQueueLen),
// burst=N (packets per receive burst), seed=N (the steering seed). The device's own drops
// (packets the kernel could not queue for a reader, or refused from one) are reported on
// queue 0.
func init() {
	Register("tun", func(sp *Spec, p Params) (*Link, error) {
		burst, err := sp.Int("burst", tun.DefaultBurst)
		if err != nil {
			return nil, err
		}
		seed, err := sp.Int("seed", 0)
		if err != nil {
			return nil, err
		}
		mtu, err := sp.Int("mtu", 0)
		if err != nil {
			return nil, err
		}
		qlen, err := sp.Int("qlen", 0)
		if err != nil {
			return nil, err
		}
		gso := sp.Flag("gso")
		cfg := tun.Config{
			Name:      sp.Device,
			Queues:    p.Queues,
			Burst:     burst,
			MTU:       mtu,
			QueueLen:  qlen,
			VnetHdr:   sp.Flag("vnet") || gso,
			GSO:       gso,
			NoSteer:   sp.Flag("nosteer"),
			SteerSeed: uint32(seed),
		}
		if err := sp.Done(); err != nil {
			return nil, err
		}
		port, err := tun.Open(cfg)
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
					Errors:       q.RxNoBuffer + q.RxTruncated + q.RxErrors + q.TxDropped + q.TxErrors,
				})
			}
			// The device counts its drops for all queues together: on queue 0.
			if ds, err := port.DeviceStats(); err == nil && len(out) > 0 {
				out[0].KernelDrops = ds.TxDropped
				out[0].Errors += ds.RxDropped
			}
			return out
		}}, nil
	})
}
