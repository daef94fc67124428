//go:build dpdk

package dpdk

import "sync/atomic"

// queueCounters are one queue's figures, counted per burst.
type queueCounters struct {
	rxBursts, rxEmpty, rxPackets, rxBytes atomic.Uint64
	rxMultiSeg, rxNoDesc                  atomic.Uint64
	txBursts, txPackets, txBytes          atomic.Uint64
	txCopies, txNoMbuf, txFull, txTooLong atomic.Uint64
	allocCalls                            atomic.Uint64
	lcore                                 atomic.Uint32
}

// QueueStats are one queue's figures.
type QueueStats struct {
	RxBursts   uint64 // rte_eth_rx_burst calls
	RxEmpty    uint64 // of which returned nothing
	RxPackets  uint64
	RxBytes    uint64
	RxMultiSeg uint64 // frames chained over several mbufs, dropped
	RxNoDesc   uint64 // frames dropped for want of a packet descriptor
	TxBursts   uint64 // rte_eth_tx_burst calls
	TxPackets  uint64
	TxBytes    uint64
	TxCopies   uint64 // packets that were not mbufs, copied into one
	TxNoMbuf   uint64 // mbufs the mempool could not give
	TxFull     uint64 // packets the transmit ring refused (the stack kept them)
	TxTooLong  uint64 // packets longer than an mbuf, dropped
	AllocCalls uint64 // rte_pktmbuf_alloc_bulk calls
	Lcore      uint32 // the lcore id of the queue's thread (0 until bound)
}

func (c *queueCounters) snapshot() QueueStats {
	return QueueStats{
		RxBursts: c.rxBursts.Load(), RxEmpty: c.rxEmpty.Load(), RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
		RxMultiSeg: c.rxMultiSeg.Load(), RxNoDesc: c.rxNoDesc.Load(),
		TxBursts: c.txBursts.Load(), TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(),
		TxCopies: c.txCopies.Load(), TxNoMbuf: c.txNoMbuf.Load(), TxFull: c.txFull.Load(), TxTooLong: c.txTooLong.Load(),
		AllocCalls: c.allocCalls.Load(), Lcore: c.lcore.Load(),
	}
}
