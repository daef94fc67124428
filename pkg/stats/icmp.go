package stats

import "strconv"

// The ICMP counters follow the others: nstat's Icmp* (the ICMP MIB of RFC 2011, with Linux's
// InCsumErrors and OutRateLimit*), IcmpMsgInTypeN and IcmpMsgOutTypeN for every type as
// /proc/net/snmp's "IcmpMsg:" line counts them, the UDP counters a stack without UDP
// sockets moves, and shardstack's own path MTU counters.
const (
	IcmpInMsgs ID = coreIDs + iota
	IcmpInErrors
	IcmpInCsumErrors
	IcmpInDestUnreachs
	IcmpInTimeExcds
	IcmpInParmProbs
	IcmpInSrcQuenchs
	IcmpInRedirects
	IcmpInEchos
	IcmpInEchoReps
	IcmpInTimestamps
	IcmpInTimestampReps
	IcmpInAddrMasks
	IcmpInAddrMaskReps
	IcmpOutMsgs
	IcmpOutErrors
	IcmpOutRateLimitGlobal // errors not sent: icmp_msgs_per_sec / icmp_msgs_burst
	IcmpOutRateLimitHost   // errors not sent: icmp_ratelimit for their destination
	IcmpOutDestUnreachs
	IcmpOutTimeExcds
	IcmpOutParmProbs
	IcmpOutSrcQuenchs
	IcmpOutRedirects
	IcmpOutEchos
	IcmpOutEchoReps
	IcmpOutTimestamps
	IcmpOutTimestampReps
	IcmpOutAddrMasks
	IcmpOutAddrMaskReps

	// UDP (nstat Udp*): shardstack has no UDP sockets, so every datagram finds none.
	UdpNoPorts      // datagrams to a port without a socket (answered with port unreachable)
	UdpInErrors     // datagrams dropped as malformed
	UdpInCsumErrors // datagrams whose checksum failed
	UdpIgnoredMulti // broadcast and multicast datagrams no socket took

	// Path MTU (no Linux MIB; shardstack's names).
	RtPMTUUpdates     // path MTU exceptions made or lowered by fragmentation needed / packet too big
	TcpPMTUReductions // connections whose MSS a lower path MTU reduced (tcp_sync_mss)

	// IcmpMsgInType0 starts 256 counters, one per ICMP type received (IcmpMsgInTypeN).
	IcmpMsgInType0
	// IcmpMsgOutType0 starts 256 counters, one per ICMP type sent (IcmpMsgOutTypeN).
	IcmpMsgOutType0 = IcmpMsgInType0 + 256
	icmpEnd         = IcmpMsgOutType0 + 256

	// NumIDs is the number of counters.
	NumIDs = icmpEnd
)

var icmpNames = [...]string{
	"IcmpInMsgs", "IcmpInErrors", "IcmpInCsumErrors", "IcmpInDestUnreachs", "IcmpInTimeExcds",
	"IcmpInParmProbs", "IcmpInSrcQuenchs", "IcmpInRedirects", "IcmpInEchos", "IcmpInEchoReps",
	"IcmpInTimestamps", "IcmpInTimestampReps", "IcmpInAddrMasks", "IcmpInAddrMaskReps",
	"IcmpOutMsgs", "IcmpOutErrors", "IcmpOutRateLimitGlobal", "IcmpOutRateLimitHost",
	"IcmpOutDestUnreachs", "IcmpOutTimeExcds", "IcmpOutParmProbs", "IcmpOutSrcQuenchs",
	"IcmpOutRedirects", "IcmpOutEchos", "IcmpOutEchoReps", "IcmpOutTimestamps",
	"IcmpOutTimestampReps", "IcmpOutAddrMasks", "IcmpOutAddrMaskReps",
	"UdpNoPorts", "UdpInErrors", "UdpInCsumErrors", "UdpIgnoredMulti",
	"rt.pmtu_updates", "tcp.pmtu_mss_reductions",
}

var _ [IcmpMsgInType0 - IcmpInMsgs - ID(len(icmpNames))]struct{} // one name per counter
var _ [ID(len(icmpNames)) + IcmpInMsgs - IcmpMsgInType0]struct{}

func init() {
	for i, n := range icmpNames {
		names[IcmpInMsgs+ID(i)] = n
	}
	for t := 0; t < 256; t++ {
		names[IcmpMsgInType0+ID(t)] = "IcmpMsgInType" + strconv.Itoa(t)
		names[IcmpMsgOutType0+ID(t)] = "IcmpMsgOutType" + strconv.Itoa(t)
	}
}

// icmpInByType and icmpOutByType are the Icmp In*/Out* counter of each ICMP type that has
// one (Linux derives them from the IcmpMsg counters; here both move).
var icmpInByType, icmpOutByType [256]ID

func init() {
	in := map[uint8]ID{3: IcmpInDestUnreachs, 11: IcmpInTimeExcds, 12: IcmpInParmProbs,
		4: IcmpInSrcQuenchs, 5: IcmpInRedirects, 8: IcmpInEchos, 0: IcmpInEchoReps,
		13: IcmpInTimestamps, 14: IcmpInTimestampReps, 17: IcmpInAddrMasks, 18: IcmpInAddrMaskReps}
	for t, id := range in {
		icmpInByType[t] = id
		icmpOutByType[t] = id - IcmpInDestUnreachs + IcmpOutDestUnreachs
	}
}

// IcmpIn counts one received ICMP message of type t: IcmpMsgInTypeN, and the Icmp In*
// counter of the type if it has one.
func (c *Counters) IcmpIn(t uint8) {
	c[IcmpMsgInType0+ID(t)]++
	if id := icmpInByType[t]; id != 0 {
		c[id]++
	}
}

// IcmpOut counts one sent ICMP message of type t: IcmpOutMsgs, IcmpMsgOutTypeN, and the
// Icmp Out* counter of the type if it has one.
func (c *Counters) IcmpOut(t uint8) {
	c[IcmpOutMsgs]++
	c[IcmpMsgOutType0+ID(t)]++
	if id := icmpOutByType[t]; id != 0 {
		c[id]++
	}
}
