package tun

// QueueStats are one queue's counters, as Stats reads them.
type QueueStats struct {
	// Queue is the queue's index.
	Queue int

	// RxPackets and RxBytes count the packets RxBurst handed out.
	RxPackets, RxBytes uint64
	// RxSyscalls counts read(2) calls, RxEmpty the bursts whose first read found nothing.
	// A burst ends with a read that finds nothing unless it fills up first, so
	// RxSyscalls - RxPackets is the price of reading a TUN device one packet per call.
	RxSyscalls, RxEmpty uint64
	// RxNoBuffer counts bursts cut short because the receive pool was empty.
	RxNoBuffer uint64
	// RxTruncated counts packets dropped because they did not fit a receive buffer.
	RxTruncated uint64
	// RxErrors counts failed reads other than "nothing to read".
	RxErrors uint64

	// TxPackets and TxBytes count the packets written to the device.
	TxPackets, TxBytes uint64
	// TxSyscalls counts write(2) calls.
	TxSyscalls uint64
	// TxFull counts bursts cut short because the device would block; the caller kept the rest.
	TxFull uint64
	// TxDropped counts packets the kernel refused (malformed, device down) or that had no
	// room for the virtio-net header.
	TxDropped uint64
	// TxErrors counts writes that failed with anything but "try again".
	TxErrors uint64
	// TxSuper counts the GSO super-packets written (Config.GSO), each a run of TxPackets'
	// segments coalesced into one write.
	TxSuper uint64
}
