package tcp

import (
	"syscall"

	"github.com/shardstack/shardstack/internal/tcpdrv"
	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
)

// ICMP errors delivered to TCP, as Linux's tcp_v4_err and tcp_v6_err do it, for both
// families: the network layer of each decodes its ICMP message into a tcpdrv.ICMPError
// (the errno of icmp_err_convert or icmpv6_err_convert, whether a request is dropped,
// whether the RTO may be reverted, the MTU of a fragmentation-needed or Packet Too Big
// report) and hands it to the shard that owns the quoted flow, whose ICMPError does the
// rest:
//
//   - The flow is looked up among connections, requests and TIME-WAIT entries only (Linux's
//     __inet_lookup_established); no match (a listener's port, a flow not ours) is the
//     caller's IcmpInErrors. TIME-WAIT ignores every error.
//   - A request (SYN-RECV) checks that the quote is its SYN-ACK (seq = its ISN, else
//     TcpExtOutOfWindowIcmps) and is dropped silently for the errors that abort it
//     (tcp_req_err: POSIX wants no network error from accept).
//   - A connection checks the quoted sequence number lies in [snd_una, snd_nxt], else
//     TcpExtOutOfWindowIcmps and nothing more, so that a blind attacker must guess it.
//   - Fragmentation needed / Packet Too Big lowers the path MTU (pmtu.go).
//   - Net and host unreachable revert one RTO backoff (RFC 6069, tcp_ld_RTO_revert).
//   - In SYN-SENT (and a simultaneous open's SYN-RECV) every error is hard: the connect
//     fails with its errno (a Dial sees EHOSTUNREACH, ECONNREFUSED, ... in a *net.OpError).
//   - Once synchronized every error is soft (RFC 1122 §4.2.3.9 as Linux reads it, socket
//     without IP_RECVERR, Linux's default): it is remembered (sk_err_soft) and becomes the
//     error the connection reports if it later times out, instead of ETIMEDOUT.

// Errors an ICMP error can give a connection (Linux icmp_err_convert and tcp_v4_err).
var (
	ErrHostUnreachable       = &Error{"no route to host", syscall.EHOSTUNREACH}
	ErrProtocol              = &Error{"protocol error", syscall.EPROTO}
	ErrProtocolNotAvailable  = &Error{"protocol not available", syscall.ENOPROTOOPT}
	ErrMessageTooLong        = &Error{"message too long", syscall.EMSGSIZE}
	ErrOperationNotSupported = &Error{"operation not supported", syscall.EOPNOTSUPP}
	ErrHostDown              = &Error{"host is down", syscall.EHOSTDOWN}
	ErrNoNetwork             = &Error{"machine is not on the network", errnoENONET}
)

// errCode is the connection's error code for an errno (errNone for one TCP never reports).
func errCode(e syscall.Errno) int32 {
	switch e {
	case syscall.ENETUNREACH:
		return errNetUnreach
	case syscall.EHOSTUNREACH:
		return errHostUnreach
	case syscall.ECONNREFUSED:
		return errRefused
	case syscall.EPROTO:
		return errProto
	case syscall.ENOPROTOOPT:
		return errNoProtoOpt
	case syscall.EMSGSIZE:
		return errMsgSize
	case syscall.EOPNOTSUPP:
		return errOpNotSupp
	case syscall.EHOSTDOWN:
		return errHostDown
	case syscall.ECONNRESET:
		return errReset
	}
	if e == errnoENONET { // apart: elsewhere than Linux 64 may be another errno's number
		return errNoNet
	}
	return errNone
}

// icmpConn is what a connection keeps for ICMP errors and the path MTU.
type icmpConn struct {
	softErr   int32        // sk_err_soft: reported instead of ETIMEDOUT if the connection times out
	pmtu      uint32       // icsk_pmtu_cookie: the path MTU the MSS follows (0: not synced yet)
	pmtuGen   uint32       // the path MTU table's generation when the MSS was synced
	pmtuExp   int64        // when the path MTU it follows expires (0: never, the link's)
	mssClamp  uint16       // the MSS the path may not raise it above (the peer's and ours)
	reverts   uint8        // RFC 6069 backoff reverts since snd_una last moved
	revertUna seqnum.Value // snd_una when reverts was counted
}

// ICMPError implements tcpdrv.Shard: an ICMP or ICMPv6 error quoting one of this shard's
// flows (see the comment at the top of this file). It is the one entry point both
// families' network layers call, Packet Too Big included.
func (s *shard) ICMPError(e *tcpdrv.ICMPError) bool {
	if ep, ok := s.est.Get(&e.Key, e.Hash); ok {
		s.icmpEndpoint(ep, e)
		return true
	}
	if req, ok := s.syn.Get(&e.Key, e.Hash); ok {
		// Linux tcp_req_err.
		if seqnum.Value(e.Seq) != req.iss {
			s.ctr.Inc(stats.TcpExtOutOfWindowIcmps)
		} else if e.AbortRequest {
			s.removeRequest(req)
			s.listenDrop()
		}
		return true
	}
	return s.tw.Contains(&e.Key, e.Hash)
}

// icmpEndpoint is tcp_v4_err's part for a full socket.
func (s *shard) icmpEndpoint(ep *endpoint, e *tcpdrv.ICMPError) {
	if ep.state == StateClosed {
		return
	}
	// The quote must be of a segment in flight: snd_una <= seq <= snd_nxt.
	seq := seqnum.Value(e.Seq)
	if seq.LessThan(ep.sndUna) || ep.sndNxt.LessThan(seq) {
		s.ctr.Inc(stats.TcpExtOutOfWindowIcmps)
		return
	}
	if e.MTU != 0 {
		s.mtuReduced(ep, e.MTU)
		return
	}
	code := errCode(e.Errno)
	if code == errNone {
		return // source quench, redirect, a code TCP does not act on
	}
	if e.RevertRTO {
		s.revertRTO(ep, seq)
	}
	switch ep.state {
	case StateSynSent, StateSynRecv:
		// tcp_done_with_error: the connect fails now.
		s.closeEndpoint(ep, code)
		return
	}
	if ep.opts.flags.Load()&optRecvErr != 0 {
		// IP_RECVERR: sk_err and sk_error_report; the connection goes on.
		ep.opts.pendErr.Store(code)
		s.queueWake(ep, true, true)
		return
	}
	ep.softErr = code
}

// takeError returns and clears an error IP_RECVERR left for the application (Linux
// sock_error), or nil.
func (ep *endpoint) takeError() error {
	for {
		e := ep.opts.pendErr.Load()
		if e == errNone {
			return nil
		}
		if ep.opts.pendErr.CompareAndSwap(e, errNone) {
			return errOf(e)
		}
	}
}

// SetRecvErr is IP_RECVERR: with it on, an ICMP error for an established connection is
// reported at once, by the next Read that finds no data or the next Write (once; the
// connection goes on), instead of being kept, as by default, for the case the connection
// times out. The error queue itself (MSG_ERRQUEUE) is not kept.
func (h Handle) SetRecvErr(on bool) error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	h.ep.opts.setFlag(optRecvErr, on)
	return nil
}

// revertRTO is RFC 6069 as Linux's tcp_ld_RTO_revert does it: an unreachable for the
// segment at snd_una while it is being retransmitted means the path, not congestion, lost
// it, so one doubling of the RTO is taken back and the timer rearmed from the last
// transmission (or the retransmission made now if that time has passed).
func (s *shard) revertRTO(ep *endpoint, seq seqnum.Value) {
	if seq != ep.sndUna || ep.retries == 0 || !ep.state.synchronized() || ep.sb.len() == 0 ||
		ep.rtxMode != rtxRetrans || !ep.rtx.Pending() {
		return
	}
	if ep.revertUna != ep.sndUna {
		ep.reverts, ep.revertUna = 0, ep.sndUna
	}
	backoff := ep.retries - int(ep.reverts)
	if backoff <= 0 {
		return
	}
	ep.reverts++
	backoff--
	rto := int64(timeoutInit)
	if ep.srtt > 0 {
		rto = min(ep.srtt+max(4*ep.rttvar, int64(rtoMin)), int64(rtoMax))
	}
	for i := 0; i < backoff && rto < int64(rtoMax); i++ {
		rto *= 2
	}
	ep.rto = min(rto, int64(rtoMax))
	if remaining := ep.rto - (s.now - ep.sb.at(0).xmit); remaining > 0 {
		s.armTimer(ep, rtxRetrans, remaining)
		return
	}
	s.retransmitTimeout(ep)
}

// errnoENONET is Linux's ENONET (64), which icmp_err_convert gives "source host isolated";
// the syscall package names it only for Linux, and the package builds elsewhere too.
const errnoENONET = syscall.Errno(64)
