package tcp

// State is a TCP state (RFC 9293 §3.3.2), numbered as Linux numbers them (tcp_states.h) so
// that socket tables read like /proc/net/tcp.
type State uint8

// The states. SYN-RECV here is also what a request shows as in the socket table.
const (
	StateClosed      State = 0
	StateEstablished State = 1
	StateSynSent     State = 2
	StateSynRecv     State = 3
	StateFinWait1    State = 4
	StateFinWait2    State = 5
	StateTimeWait    State = 6
	StateClose       State = 7 // Linux TCP_CLOSE; we use StateClosed for "gone"
	StateCloseWait   State = 8
	StateLastAck     State = 9
	StateListen      State = 10
	StateClosing     State = 11
)

var stateNames = [...]string{
	StateClosed:      "CLOSED",
	StateEstablished: "ESTAB",
	StateSynSent:     "SYN-SENT",
	StateSynRecv:     "SYN-RECV",
	StateFinWait1:    "FIN-WAIT-1",
	StateFinWait2:    "FIN-WAIT-2",
	StateTimeWait:    "TIME-WAIT",
	StateClose:       "CLOSED",
	StateCloseWait:   "CLOSE-WAIT",
	StateLastAck:     "LAST-ACK",
	StateListen:      "LISTEN",
	StateClosing:     "CLOSING",
}

// String returns the state as ss(8) prints it.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// synchronized reports whether the state is past the handshake (RFC 9293 "synchronized").
func (s State) synchronized() bool {
	switch s {
	case StateEstablished, StateFinWait1, StateFinWait2, StateCloseWait, StateClosing, StateLastAck, StateTimeWait:
		return true
	}
	return false
}

// counted reports whether TcpCurrEstab counts the state (RFC 1213 tcpCurrEstab:
// ESTABLISHED or CLOSE-WAIT).
func (s State) counted() bool { return s == StateEstablished || s == StateCloseWait }

// receives reports whether the state still takes the peer's data (its FIN has not come).
func (s State) receives() bool {
	return s == StateEstablished || s == StateFinWait1 || s == StateFinWait2
}
