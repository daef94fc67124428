package netns

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// Socket is one row of ss -tan: a TCP socket of the namespace's kernel.
type Socket struct {
	State string // as ss prints it: LISTEN, SYN-SENT, SYN-RECV, ESTAB, FIN-WAIT-1, TIME-WAIT, ...
	RecvQ int    // bytes not yet read; for a listener, connections waiting for accept
	SendQ int    // bytes not yet acknowledged; for a listener, its backlog
	Local netip.AddrPort
	Peer  netip.AddrPort // port 0 where ss prints "*"
}

// Sockets lists the namespace's TCP sockets (ss -tanH), only those whose local or peer
// port is port unless port is 0; if ss fails, so does the test.
func (ns *NS) Sockets(t testing.TB, port int) []Socket {
	t.Helper()
	socks, err := ns.ListSockets(port)
	if err != nil {
		t.Fatal(err)
	}
	return socks
}

// ListSockets is Sockets returning its error, for a goroutine other than the test's
// (which must not fail the test itself).
func (ns *NS) ListSockets(port int) ([]Socket, error) {
	out, err := ns.run("", "ss", "-tanH")
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	all, err := parseSS(out)
	if err != nil {
		return nil, fmt.Errorf("netns: ss in %s: %w", ns.name, err)
	}
	if port == 0 {
		return all, nil
	}
	var socks []Socket
	for _, s := range all {
		if int(s.Local.Port()) == port || int(s.Peer.Port()) == port {
			socks = append(socks, s)
		}
	}
	return socks, nil
}

// parseSS parses ss -tanH output: State Recv-Q Send-Q Local:Port Peer:Port [Process].
func parseSS(out string) ([]Socket, error) {
	var socks []Socket
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("short line %q", line)
		}
		var s Socket
		var err error
		s.State = f[0]
		if s.RecvQ, err = strconv.Atoi(f[1]); err != nil {
			return nil, fmt.Errorf("line %q: Recv-Q: %w", line, err)
		}
		if s.SendQ, err = strconv.Atoi(f[2]); err != nil {
			return nil, fmt.Errorf("line %q: Send-Q: %w", line, err)
		}
		if s.Local, err = parseSSAddr(f[3]); err != nil {
			return nil, fmt.Errorf("line %q: %w", line, err)
		}
		if s.Peer, err = parseSSAddr(f[4]); err != nil {
			return nil, fmt.Errorf("line %q: %w", line, err)
		}
		socks = append(socks, s)
	}
	return socks, nil
}

// parseSSAddr parses one ss -n endpoint: "198.18.0.1:80", "198.18.0.1%veth0:80" (bound
// to a device, which is dropped), "[::1]:80", "*:80" (any address, both families, read
// as ::) and "0.0.0.0:*" (no port, read as 0).
func parseSSAddr(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("endpoint %q has no port", s)
	}
	host, portText := s[:i], s[i+1:]
	var port uint64
	if portText != "*" {
		var err error
		if port, err = strconv.ParseUint(portText, 10, 16); err != nil {
			return netip.AddrPort{}, fmt.Errorf("endpoint %q: port: %w", s, err)
		}
	}
	if j := strings.LastIndexByte(host, '%'); j >= 0 && !strings.Contains(host[j:], "]") {
		host = host[:j]
	}
	if host == "*" {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port)), nil
	}
	addr, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("endpoint %q: %w", s, err)
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}
