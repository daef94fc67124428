package afpacket

import (
	"fmt"
	"strings"
)

// QueueStats are one queue's counters, as Stats reads them.
type QueueStats struct {
	// Queue is the queue's index.
	Queue int

	// RxPackets and RxBytes count the frames RxBurst handed out.
	RxPackets, RxBytes uint64
	// RxSyscalls counts recvmmsg calls, RxEmpty those that found nothing (RxRing: both 0).
	RxSyscalls, RxEmpty uint64
	// RxNoBuffer counts bursts cut short because the receive pool had no packet to post
	// (or, with RxRing, no bare packet to attach to a frame).
	RxNoBuffer uint64
	// RxTruncated counts frames dropped because they did not fit the buffer or the ring.
	RxTruncated uint64
	// RxErrors counts failed receive calls (other than "nothing to read") and malformed
	// ring entries.
	RxErrors uint64
	// RxKernelDrops counts frames the kernel dropped because the socket buffer or the ring
	// was full (PACKET_STATISTICS tp_drops, accumulated: the kernel resets it on read).
	RxKernelDrops uint64
	// RxFreezes counts the times the kernel found no free ring block (tp_freeze_q_cnt).
	RxFreezes uint64
	// RxKernelPackets counts the frames the kernel steered to this socket, dropped ones
	// included (PACKET_STATISTICS tp_packets, accumulated).
	RxKernelPackets uint64

	// TxPackets and TxBytes count the frames handed to the kernel, a super-packet (GSO) as
	// the segments it carries.
	TxPackets, TxBytes uint64
	// TxSyscalls counts sendmmsg calls, or send(2) kicks of the transmit ring.
	TxSyscalls uint64
	// TxFull counts bursts cut short because the socket buffer or the ring was full; the
	// caller kept the rest.
	TxFull uint64
	// TxDropped counts frames dropped on transmit: refused by the kernel (too long,
	// malformed, interface down, dropped by the queueing discipline) or too long for a
	// ring slot.
	TxDropped uint64
	// TxErrors counts send calls that failed with anything but "try again".
	TxErrors uint64
	// TxSuper counts the GSO super-packets handed to the kernel (Config.GSO), and
	// TxSuperSegments the segments of TxPackets they carried: the kernel got
	// TxFrames() = TxPackets - TxSuperSegments + TxSuper frames, and cuts each
	// super-packet back into its segments unless the device takes it whole.
	TxSuper, TxSuperSegments uint64
}

// TxFrames is the number of frames handed to the kernel, a super-packet as one.
func (s QueueStats) TxFrames() uint64 { return s.TxPackets - s.TxSuperSegments + s.TxSuper }

// RxPerSyscall is the mean number of frames one recvmmsg call returned, counting the calls
// that found nothing; 0 without calls.
func (s QueueStats) RxPerSyscall() float64 { return ratio(s.RxPackets, s.RxSyscalls) }

// RxPerBusySyscall is the mean number of frames per recvmmsg call that returned any.
func (s QueueStats) RxPerBusySyscall() float64 { return ratio(s.RxPackets, s.RxSyscalls-s.RxEmpty) }

// TxPerSyscall is the mean number of frames per sendmmsg call or ring kick.
func (s QueueStats) TxPerSyscall() float64 { return ratio(s.TxPackets, s.TxSyscalls) }

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Add returns the sum of two queues' counters (for totals; Queue is s's).
func (s QueueStats) Add(o QueueStats) QueueStats {
	s.RxPackets += o.RxPackets
	s.RxBytes += o.RxBytes
	s.RxSyscalls += o.RxSyscalls
	s.RxEmpty += o.RxEmpty
	s.RxNoBuffer += o.RxNoBuffer
	s.RxTruncated += o.RxTruncated
	s.RxErrors += o.RxErrors
	s.RxKernelDrops += o.RxKernelDrops
	s.RxFreezes += o.RxFreezes
	s.RxKernelPackets += o.RxKernelPackets
	s.TxPackets += o.TxPackets
	s.TxBytes += o.TxBytes
	s.TxSyscalls += o.TxSyscalls
	s.TxFull += o.TxFull
	s.TxDropped += o.TxDropped
	s.TxErrors += o.TxErrors
	s.TxSuper += o.TxSuper
	s.TxSuperSegments += o.TxSuperSegments
	return s
}

// String prints the counters on one line.
func (s QueueStats) String() string {
	return fmt.Sprintf("q%d rx %d pkts %d B %d calls (%.1f/call, %.1f/busy call) nobuf %d trunc %d err %d kernel %d kdrop %d freeze %d | "+
		"tx %d pkts %d B %d calls (%.1f/call) gso %d (%d segs) full %d drop %d err %d",
		s.Queue, s.RxPackets, s.RxBytes, s.RxSyscalls, s.RxPerSyscall(), s.RxPerBusySyscall(),
		s.RxNoBuffer, s.RxTruncated, s.RxErrors, s.RxKernelPackets, s.RxKernelDrops, s.RxFreezes,
		s.TxPackets, s.TxBytes, s.TxSyscalls, s.TxPerSyscall(), s.TxSuper, s.TxSuperSegments, s.TxFull, s.TxDropped, s.TxErrors)
}

// FormatStats prints one line per queue and, for several queues, a line of totals.
func FormatStats(stats []QueueStats) string {
	var b strings.Builder
	var total QueueStats
	for i, s := range stats {
		b.WriteString(s.String())
		b.WriteByte('\n')
		if i == 0 {
			total = s
		} else {
			total = total.Add(s)
		}
	}
	if len(stats) > 1 {
		b.WriteString("all" + strings.TrimPrefix(total.String(), fmt.Sprintf("q%d", total.Queue)))
		b.WriteByte('\n')
	}
	return b.String()
}
