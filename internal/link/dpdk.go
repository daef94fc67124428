//go:build dpdk

package link

import (
	"fmt"
	"strings"

	"github.com/shardstack/shardstack/pkg/dpdkshim/dpdk"
)

// The DPDK backend: dpdk:EAL-ARGUMENTS [-- OPTIONS]. The EAL arguments are split into words
// as a shell would (quotes keep blanks and commas, nothing is expanded) and passed to
// rte_eal_init as they are; the words after a "--" word are this backend's options: port=NAME
// (the ethdev; default the first --vdev device, else the first port), rxd=N and txd=N
// (descriptors per ring, default 1024), mbufs=N (the mempool's size). For example
//
//	dpdk:--no-huge -m 256 --no-shconf --vdev=net_af_packet0,iface=veth0,qpairs=2 -- rxd=512
//
// One process has one EAL: it is initialised by the first port opened.
func init() {
	RegisterRaw("dpdk", func(sp *Spec, p Params) (*Link, error) {
		words, err := dpdk.SplitArgs(sp.Device)
		if err != nil {
			return nil, fmt.Errorf("link dpdk %q: %w", sp.Device, err)
		}
		eal := words
		for i, w := range words {
			if w == "--" {
				eal = words[:i]
				for _, o := range words[i+1:] {
					k, v, _ := strings.Cut(o, "=")
					if err := sp.SetOption(k, v); err != nil {
						return nil, err
					}
				}
				break
			}
		}
		cfg := dpdk.Config{EAL: eal, Queues: p.Queues, Port: sp.String("port", "")}
		if cfg.RxDesc, err = sp.Int("rxd", 0); err != nil {
			return nil, err
		}
		if cfg.TxDesc, err = sp.Int("txd", 0); err != nil {
			return nil, err
		}
		if cfg.Mbufs, err = sp.Int("mbufs", 0); err != nil {
			return nil, err
		}
		if err := sp.Done(); err != nil {
			return nil, err
		}
		port, err := dpdk.Open(cfg)
		if err != nil {
			return nil, err
		}
		return &Link{Port: port, Stats: func() []QueueStats {
			ps, _ := port.PortStats()
			bulk, single := port.FreeCalls()
			var out []QueueStats
			for i, q := range port.Stats() {
				qs := QueueStats{
					RxPackets: q.RxPackets, RxBytes: q.RxBytes, RxSyscalls: q.RxBursts, RxEmpty: q.RxEmpty,
					TxPackets: q.TxPackets, TxBytes: q.TxBytes, TxSyscalls: q.TxBursts,
					CgoCalls: q.RxBursts + q.TxBursts + q.AllocCalls,
					Errors:   q.RxMultiSeg + q.RxNoDesc + q.TxNoMbuf + q.TxTooLong,
				}
				if i == 0 {
					// Port-wide: the PMD's drops, and the frees (made by whichever
					// goroutine freed the packets).
					qs.KernelDrops = ps.IMissed + ps.NoMbuf
					qs.Errors += ps.IErrors + ps.OErrors
					qs.CgoCalls += bulk + single
				}
				out = append(out, qs)
			}
			return out
		}}, nil
	})
}
