// Package stats owns the stack's counters: one fixed array per shard, each entry named as
// Linux names it (nstat for the IP and TCP MIBs, /sys/class/net/*/statistics for the link and
// /proc/net/stat/arp_cache and ndisc_cache for neighbours), so that what shardstack reports can be read next
// to what Linux reports.
//
// A Counters value has exactly one writer, the shard that owns it, and is read by copying it on
// that shard (the stack hands the copy over). Nothing here is atomic: an increment on the
// packet path is a plain add.
package stats

import "fmt"

// ID names one counter.
type ID int

// The counters. The comment after each is when it moves.
const (
	// Link (names of /sys/class/net/<dev>/statistics).
	RxPackets          ID = iota // frames received
	RxBytes                      // bytes received
	TxPackets                    // frames handed to the port
	TxBytes                      // bytes handed to the port
	RxDropped                    // frames dropped before any protocol saw them (no buffer, handoff ring full)
	TxDropped                    // frames the port refused (tx ring full) or that could not be built
	TxNoBuffer                   // frames never built: the shard's packet pool was empty
	RxNoHandler                  // frames of an EtherType or to a MAC the stack does not handle
	RxLengthErrors               // frames too short for their link header
	RxOtherhostDropped           // frames addressed to another MAC

	// Neighbours (/proc/net/stat/arp_cache).
	ArpUnresolvedDiscards // packets dropped because their next hop never resolved
	ArpRequestsSent       // ARP requests sent (Linux: no MIB; kept for visibility)
	ArpRepliesSent        // ARP replies sent
	ArpInErrors           // malformed ARP packets
	ArpEntries            // a gauge: entries in the neighbour cache (arp_cache "entries")
	ArpAllocs             // entries made
	ArpDestroys           // entries removed (garbage collection, failure, table flush)
	ArpForcedGCRuns       // garbage collections forced by a full table (gc_thresh2/3)
	ArpTableFulls         // entries refused because the table stayed at gc_thresh3 after a forced collection

	// IPv6 neighbours (/proc/net/stat/ndisc_cache), the same as arp_cache's.
	NdiscUnresolvedDiscards
	NdiscEntries // a gauge
	NdiscAllocs
	NdiscDestroys
	NdiscForcedGCRuns
	NdiscTableFulls

	// Routing input (/proc/net/stat/rt_cache).
	RtInMartianSrc // packets dropped for a martian source (ip_route_input_slow martian_source)
	RtInMartianDst // packets dropped for a martian destination (martian_destination)

	// IP (nstat Ip*, IpExt*).
	IpInReceives
	IpInHdrErrors
	IpInAddrErrors
	IpInUnknownProtos
	IpInDiscards
	IpInDelivers
	IpOutRequests
	IpOutNoRoutes
	IpReasmReqds
	IpReasmFails
	IpExtInTruncatedPkts
	IpExtInCsumErrors
	IpExtInBcastPkts // datagrams received for a broadcast address (limited or our subnet's)
	IpExtInMcastPkts // datagrams received for a multicast address
	// Linux counts the next two in no MIB (they are drops with a reason and, for source
	// routes, a log line under log_martians); shardstack counts them under its own names.
	IpInSourceRouteDrops // datagrams with LSRR/SSRR dropped (accept_source_route=0, ip_rcv_options)
	TcpInNotHostDrops    // TCP segments dropped as not addressed to this host: an Ethernet broadcast or multicast frame (tcp_v4_rcv's pkt_type != PACKET_HOST), or a broadcast or multicast IP destination (tcp_v4_conn_request, and no RST to such routes)

	// IPv6 (nstat Ip6*).
	Ip6InReceives
	Ip6InHdrErrors      // bad version, loopback or multicast source, reserved or interface-local multicast destination, malformed extension headers, routing header with segments left
	Ip6InAddrErrors     // for an address not ours (forwarding off), a routing header to a multicast address
	Ip6InUnknownProtos  // next header we have no handler for (a hop-by-hop header not first included)
	Ip6InTruncatedPkts  // payload length beyond the frame
	Ip6InDiscards       // dropped for want of a resource
	Ip6InDelivers       // handed to TCP, ICMPv6, or "no next header"
	Ip6OutRequests      // datagrams we sent
	Ip6OutNoRoutes      // not sent: no route (off our prefixes, no IPv6 gateway)
	Ip6ReasmReqds       // fragments received
	Ip6ReasmOKs         // atomic fragments (offset 0, no more fragments) passed on as whole datagrams
	Ip6ReasmFails       // fragments dropped: shardstack does not reassemble IPv6
	Ip6InMcastPkts      // datagrams received for a multicast address
	Ip6OutMcastPkts     // datagrams sent to a multicast address
	Ip6InMcastNotJoined // shardstack's name: multicast datagrams for a group we did not join (Linux drops them with no MIB)

	// ICMPv6 (nstat Icmp6*).
	Icmp6InMsgs
	Icmp6InErrors // too short or of a bad code
	Icmp6OutMsgs
	Icmp6InCsumErrors
	Icmp6InDestUnreachs
	Icmp6InPktTooBigs
	Icmp6InTimeExcds
	Icmp6InParmProblems
	Icmp6InEchos
	Icmp6InEchoReplies
	Icmp6InRouterSolicits
	Icmp6InRouterAdvertisements
	Icmp6InNeighborSolicits
	Icmp6InNeighborAdvertisements
	Icmp6InRedirects
	Icmp6OutEchoReplies
	Icmp6OutNeighborSolicits
	Icmp6OutNeighborAdvertisements
	Icmp6OutDestUnreachs
	Icmp6OutParmProblems
	Icmp6OutErrors        // errors we could not send (no route, no buffer)
	Icmp6OutRateLimitHost // errors not sent: net.ipv6.icmp.ratelimit for their destination

	// UDP over IPv6 (nstat Udp6*): shardstack has no UDP sockets, so every datagram finds none.
	Udp6NoPorts      // datagrams to a port without a socket (answered with port unreachable)
	Udp6InErrors     // datagrams dropped as malformed (a zero checksum included: IPv6 requires one)
	Udp6InCsumErrors // datagrams whose checksum failed
	Udp6IgnoredMulti // multicast datagrams no socket took

	Icmp6InNDiscInvalid // shardstack's name: neighbour discovery messages failing RFC 4861 §7.1's checks (hop limit 255, code, length, options), which Linux drops with no MIB

	// TCP (nstat Tcp*).
	TcpActiveOpens
	TcpPassiveOpens
	TcpAttemptFails
	TcpEstabResets
	TcpCurrEstab // a gauge: summed over shards it is the number of ESTABLISHED+CLOSE-WAIT flows
	TcpInSegs
	TcpOutSegs
	TcpRetransSegs
	TcpInErrs
	TcpOutRsts
	TcpInCsumErrors

	// TCP extensions (nstat TcpExt*).
	TcpExtListenOverflows
	TcpExtListenDrops
	TcpExtTCPReqQFullDrop
	TcpExtTCPReqQFullDoCookies
	TcpExtSyncookiesSent
	TcpExtSyncookiesRecv
	TcpExtSyncookiesFailed
	TcpExtEmbryonicRsts
	TcpExtTCPTimeouts
	TcpExtTCPSynRetrans
	TcpExtTW
	TcpExtTCPTimeWaitOverflow
	TcpExtTCPAbortOnData
	TcpExtTCPAbortOnClose
	TcpExtTCPAbortOnTimeout
	TcpExtTCPAbortOnLinger
	TcpExtTCPDeferAcceptDrop
	TcpExtDelayedACKs
	TcpExtTCPOFODrop
	TcpExtTCPOFOQueue
	TcpExtDelayedACKLost
	TcpExtTCPOFOMerge
	TcpExtTCPDSACKOldSent
	TcpExtTCPDSACKOfoSent
	TcpExtTCPRcvQDrop
	TcpExtTCPOrigDataSent
	TcpExtTCPHPHits
	TcpExtPAWSEstabRejected
	TcpExtTCPACKSkippedSynRecv
	TcpExtTCPChallengeACK
	TcpExtOutOfWindowIcmps
	TcpExtTCPSYNChallenge        // a SYN on a synchronized connection drew (or would have drawn) a challenge ACK
	TcpExtTCPACKSkippedSeq       // an ACK for an out-of-window segment was not sent (tcp_invalid_ratelimit)
	TcpExtTCPACKSkippedFinWait2  // likewise for an orphaned FIN-WAIT-2 connection
	TcpExtTCPACKSkippedTimeWait  // likewise for a TIME-WAIT entry
	TcpExtTCPACKSkippedChallenge // a challenge ACK was not sent (tcp_invalid_ratelimit)
	TcpExtTCPWinProbe            // zero-window probes sent
	TcpExtTCPSackRecovery        // recoveries begun with SACK
	TcpExtTCPRenoRecovery        // recoveries begun by duplicate ACKs (no SACK)
	TcpExtTCPFastRetrans         // segments resent in fast recovery
	TcpExtTCPSlowStartRetrans    // segments resent after a retransmission timeout
	TcpExtTCPLostRetransmit      // retransmissions found lost again
	TcpExtTCPLossProbes          // tail loss probes sent
	TcpExtTCPLossProbeRecovery   // losses a tail loss probe repaired
	TcpExtTCPFullUndo            // recoveries undone whole (the retransmissions proved unneeded)
	TcpExtTCPDSACKUndo           // recoveries undone by D-SACKs
	TcpExtTCPLossUndo            // retransmission timeouts undone (spurious)
	TcpExtTCPDSACKRecv           // D-SACK blocks received
	TcpExtTCPSACKReorder         // reordering found through SACK
	TcpExtTCPTSReorder           // reordering found through undo
	TcpExtTCPSACKReneging        // timeouts that found the peer had dropped data it SACKed
	TcpExtTCPSACKDiscard         // SACK blocks ignored: not over data in flight (tcp_is_sackblock_valid)
	TcpExtTCPKeepAlive           // keepalive probes sent (Linux LINUX_MIB_TCPKEEPALIVE)

	// coreIDs ends the counters above; the ICMP ones (icmp.go) follow, and NumIDs is
	// their end.
	coreIDs
)

var names = [NumIDs]string{
	RxPackets:          "rx_packets",
	RxBytes:            "rx_bytes",
	TxPackets:          "tx_packets",
	TxBytes:            "tx_bytes",
	RxDropped:          "rx_dropped",
	TxDropped:          "tx_dropped",
	TxNoBuffer:         "tx_no_buffer",
	RxNoHandler:        "rx_nohandler",
	RxLengthErrors:     "rx_length_errors",
	RxOtherhostDropped: "rx_otherhost_dropped",

	ArpUnresolvedDiscards: "arp_cache.unresolved_discards",
	ArpRequestsSent:       "arp_cache.requests_sent",
	ArpRepliesSent:        "arp_cache.replies_sent",
	ArpInErrors:           "arp_cache.in_errors",
	ArpEntries:            "arp_cache.entries",
	ArpAllocs:             "arp_cache.allocs",
	ArpDestroys:           "arp_cache.destroys",
	ArpForcedGCRuns:       "arp_cache.forced_gc_runs",
	ArpTableFulls:         "arp_cache.table_fulls",

	RtInMartianSrc: "rt_cache.in_martian_src",
	RtInMartianDst: "rt_cache.in_martian_dst",

	IpInReceives:         "IpInReceives",
	IpInHdrErrors:        "IpInHdrErrors",
	IpInAddrErrors:       "IpInAddrErrors",
	IpInUnknownProtos:    "IpInUnknownProtos",
	IpInDiscards:         "IpInDiscards",
	IpInDelivers:         "IpInDelivers",
	IpOutRequests:        "IpOutRequests",
	IpOutNoRoutes:        "IpOutNoRoutes",
	IpReasmReqds:         "IpReasmReqds",
	IpReasmFails:         "IpReasmFails",
	IpExtInTruncatedPkts: "IpExtInTruncatedPkts",
	IpExtInCsumErrors:    "IpExtInCsumErrors",
	IpExtInBcastPkts:     "IpExtInBcastPkts",
	IpExtInMcastPkts:     "IpExtInMcastPkts",
	IpInSourceRouteDrops: "ip.in_source_route_drops",
	TcpInNotHostDrops:    "tcp.in_not_host_drops",

	NdiscUnresolvedDiscards: "ndisc_cache.unresolved_discards",
	NdiscEntries:            "ndisc_cache.entries",
	NdiscAllocs:             "ndisc_cache.allocs",
	NdiscDestroys:           "ndisc_cache.destroys",
	NdiscForcedGCRuns:       "ndisc_cache.forced_gc_runs",
	NdiscTableFulls:         "ndisc_cache.table_fulls",

	Ip6InReceives:       "Ip6InReceives",
	Ip6InHdrErrors:      "Ip6InHdrErrors",
	Ip6InAddrErrors:     "Ip6InAddrErrors",
	Ip6InUnknownProtos:  "Ip6InUnknownProtos",
	Ip6InTruncatedPkts:  "Ip6InTruncatedPkts",
	Ip6InDiscards:       "Ip6InDiscards",
	Ip6InDelivers:       "Ip6InDelivers",
	Ip6OutRequests:      "Ip6OutRequests",
	Ip6OutNoRoutes:      "Ip6OutNoRoutes",
	Ip6ReasmReqds:       "Ip6ReasmReqds",
	Ip6ReasmOKs:         "Ip6ReasmOKs",
	Ip6ReasmFails:       "Ip6ReasmFails",
	Ip6InMcastPkts:      "Ip6InMcastPkts",
	Ip6OutMcastPkts:     "Ip6OutMcastPkts",
	Ip6InMcastNotJoined: "ip6.in_mcast_not_joined",

	Icmp6InMsgs:                    "Icmp6InMsgs",
	Icmp6InErrors:                  "Icmp6InErrors",
	Icmp6OutMsgs:                   "Icmp6OutMsgs",
	Icmp6InCsumErrors:              "Icmp6InCsumErrors",
	Icmp6InDestUnreachs:            "Icmp6InDestUnreachs",
	Icmp6InPktTooBigs:              "Icmp6InPktTooBigs",
	Icmp6InTimeExcds:               "Icmp6InTimeExcds",
	Icmp6InParmProblems:            "Icmp6InParmProblems",
	Icmp6InEchos:                   "Icmp6InEchos",
	Icmp6InEchoReplies:             "Icmp6InEchoReplies",
	Icmp6InRouterSolicits:          "Icmp6InRouterSolicits",
	Icmp6InRouterAdvertisements:    "Icmp6InRouterAdvertisements",
	Icmp6InNeighborSolicits:        "Icmp6InNeighborSolicits",
	Icmp6InNeighborAdvertisements:  "Icmp6InNeighborAdvertisements",
	Icmp6InRedirects:               "Icmp6InRedirects",
	Icmp6OutEchoReplies:            "Icmp6OutEchoReplies",
	Icmp6OutNeighborSolicits:       "Icmp6OutNeighborSolicits",
	Icmp6OutNeighborAdvertisements: "Icmp6OutNeighborAdvertisements",
	Icmp6OutDestUnreachs:           "Icmp6OutDestUnreachs",
	Icmp6OutParmProblems:           "Icmp6OutParmProblems",
	Icmp6OutErrors:                 "Icmp6OutErrors",
	Icmp6OutRateLimitHost:          "Icmp6OutRateLimitHost",
	Udp6NoPorts:                    "Udp6NoPorts",
	Udp6InErrors:                   "Udp6InErrors",
	Udp6InCsumErrors:               "Udp6InCsumErrors",
	Udp6IgnoredMulti:               "Udp6IgnoredMulti",
	Icmp6InNDiscInvalid:            "icmp6.in_ndisc_invalid",

	TcpActiveOpens:  "TcpActiveOpens",
	TcpPassiveOpens: "TcpPassiveOpens",
	TcpAttemptFails: "TcpAttemptFails",
	TcpEstabResets:  "TcpEstabResets",
	TcpCurrEstab:    "TcpCurrEstab",
	TcpInSegs:       "TcpInSegs",
	TcpOutSegs:      "TcpOutSegs",
	TcpRetransSegs:  "TcpRetransSegs",
	TcpInErrs:       "TcpInErrs",
	TcpOutRsts:      "TcpOutRsts",
	TcpInCsumErrors: "TcpInCsumErrors",

	TcpExtListenOverflows:        "TcpExtListenOverflows",
	TcpExtListenDrops:            "TcpExtListenDrops",
	TcpExtTCPReqQFullDrop:        "TcpExtTCPReqQFullDrop",
	TcpExtTCPReqQFullDoCookies:   "TcpExtTCPReqQFullDoCookies",
	TcpExtSyncookiesSent:         "TcpExtSyncookiesSent",
	TcpExtSyncookiesRecv:         "TcpExtSyncookiesRecv",
	TcpExtSyncookiesFailed:       "TcpExtSyncookiesFailed",
	TcpExtEmbryonicRsts:          "TcpExtEmbryonicRsts",
	TcpExtTCPTimeouts:            "TcpExtTCPTimeouts",
	TcpExtTCPSynRetrans:          "TcpExtTCPSynRetrans",
	TcpExtTW:                     "TcpExtTW",
	TcpExtTCPTimeWaitOverflow:    "TcpExtTCPTimeWaitOverflow",
	TcpExtTCPAbortOnData:         "TcpExtTCPAbortOnData",
	TcpExtTCPAbortOnClose:        "TcpExtTCPAbortOnClose",
	TcpExtTCPAbortOnTimeout:      "TcpExtTCPAbortOnTimeout",
	TcpExtTCPAbortOnLinger:       "TcpExtTCPAbortOnLinger",
	TcpExtTCPDeferAcceptDrop:     "TcpExtTCPDeferAcceptDrop",
	TcpExtDelayedACKs:            "TcpExtDelayedACKs",
	TcpExtTCPOFODrop:             "TcpExtTCPOFODrop",
	TcpExtTCPOFOQueue:            "TcpExtTCPOFOQueue",
	TcpExtDelayedACKLost:         "TcpExtDelayedACKLost",
	TcpExtTCPOFOMerge:            "TcpExtTCPOFOMerge",
	TcpExtTCPDSACKOldSent:        "TcpExtTCPDSACKOldSent",
	TcpExtTCPDSACKOfoSent:        "TcpExtTCPDSACKOfoSent",
	TcpExtTCPRcvQDrop:            "TcpExtTCPRcvQDrop",
	TcpExtTCPOrigDataSent:        "TcpExtTCPOrigDataSent",
	TcpExtTCPHPHits:              "TcpExtTCPHPHits",
	TcpExtPAWSEstabRejected:      "TcpExtPAWSEstab",
	TcpExtTCPACKSkippedSynRecv:   "TcpExtTCPACKSkippedSynRecv",
	TcpExtTCPChallengeACK:        "TcpExtTCPChallengeACK",
	TcpExtOutOfWindowIcmps:       "TcpExtOutOfWindowIcmps",
	TcpExtTCPSYNChallenge:        "TcpExtTCPSYNChallenge",
	TcpExtTCPACKSkippedSeq:       "TcpExtTCPACKSkippedSeq",
	TcpExtTCPACKSkippedFinWait2:  "TcpExtTCPACKSkippedFinWait2",
	TcpExtTCPACKSkippedTimeWait:  "TcpExtTCPACKSkippedTimeWait",
	TcpExtTCPACKSkippedChallenge: "TcpExtTCPACKSkippedChallenge",
	TcpExtTCPWinProbe:            "TcpExtTCPWinProbe",
	TcpExtTCPSackRecovery:        "TcpExtTCPSackRecovery",
	TcpExtTCPRenoRecovery:        "TcpExtTCPRenoRecovery",
	TcpExtTCPFastRetrans:         "TcpExtTCPFastRetrans",
	TcpExtTCPSlowStartRetrans:    "TcpExtTCPSlowStartRetrans",
	TcpExtTCPLostRetransmit:      "TcpExtTCPLostRetransmit",
	TcpExtTCPLossProbes:          "TcpExtTCPLossProbes",
	TcpExtTCPLossProbeRecovery:   "TcpExtTCPLossProbeRecovery",
	TcpExtTCPFullUndo:            "TcpExtTCPFullUndo",
	TcpExtTCPDSACKUndo:           "TcpExtTCPDSACKUndo",
	TcpExtTCPLossUndo:            "TcpExtTCPLossUndo",
	TcpExtTCPDSACKRecv:           "TcpExtTCPDSACKRecv",
	TcpExtTCPSACKReorder:         "TcpExtTCPSACKReorder",
	TcpExtTCPTSReorder:           "TcpExtTCPTSReorder",
	TcpExtTCPSACKReneging:        "TcpExtTCPSACKReneging",
	TcpExtTCPSACKDiscard:         "TcpExtTCPSACKDiscard",
	TcpExtTCPKeepAlive:           "TcpExtTCPKeepAlive",
}

// Name returns the Linux name of a counter.
func (id ID) String() string {
	if id < 0 || id >= NumIDs {
		return fmt.Sprintf("stats.ID(%d)", int(id))
	}
	return names[id]
}

// Lookup returns the ID of the counter with the given Linux name.
func Lookup(name string) (ID, bool) {
	for i, n := range names {
		if n == name {
			return ID(i), true
		}
	}
	return 0, false
}

// Counters is one shard's set of counters, indexed by ID.
type Counters [NumIDs]uint64

// Inc adds one to a counter.
func (c *Counters) Inc(id ID) { c[id]++ }

// Add adds n to a counter.
func (c *Counters) Add(id ID, n uint64) { c[id] += n }

// Dec subtracts one from a gauge.
func (c *Counters) Dec(id ID) { c[id]-- }

// Get returns a counter by name; ok is false for an unknown name.
func (c Counters) Get(name string) (v uint64, ok bool) {
	id, ok := Lookup(name)
	if !ok {
		return 0, false
	}
	return c[id], true
}

// Merge adds every counter of o into c.
func (c *Counters) Merge(o *Counters) {
	for i := range c {
		c[i] += o[i]
	}
}

// Gauge reports whether a counter is a gauge (it can go down) rather than a count.
func (id ID) Gauge() bool { return id == TcpCurrEstab || id == ArpEntries || id == NdiscEntries }

// Value returns the counter as a signed number, which is what a gauge summed over shards needs
// (one shard may have closed more flows than it opened while another opened them).
func (c Counters) Value(id ID) int64 { return int64(c[id]) }

// Each calls fn for every counter in ID order, with its Linux name.
func (c *Counters) Each(fn func(id ID, name string, v uint64)) {
	for i := range c {
		fn(ID(i), names[i], c[i])
	}
}

// Diff returns, for each counter, c - old; gauges may come out negative (as int64 in uint64).
func (c *Counters) Diff(old *Counters) Counters {
	var d Counters
	for i := range c {
		d[i] = c[i] - old[i]
	}
	return d
}

// NonZero returns the counters that are not zero, by their Linux names.
func (c *Counters) NonZero() map[string]uint64 {
	m := map[string]uint64{}
	for i, v := range c {
		if v != 0 {
			m[names[i]] = v
		}
	}
	return m
}
