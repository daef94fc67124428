#!/usr/bin/env bash
# capture.sh records golden packets from the Linux kernel's own TCP/IP stack for the
# round-trip tests in pkg/header and the fuzz seeds in fuzz/.
#
# The committed linux-tcp.pcap was produced, as root, from the repository root with:
#
#   bash pkg/header/testdata/capture.sh pkg/header/testdata/linux-tcp.pcap
#
# What it does:
#   - creates two network namespaces, ss-cap-a (client, 198.18.0.1/24) and ss-cap-b
#     (server, 198.18.0.2/24), joined by a veth pair; 198.18.0.0/15 is the RFC 2544
#     benchmarking range, and there is no route out, so no packet leaves the namespaces;
#   - disables IPv6 (no neighbour discovery noise) and transmit checksum offload (so the
#     captured frames carry real checksums, not CHECKSUM_PARTIAL placeholders);
#   - runs tcpdump -w on the server side and makes these kernel exchanges:
#       1. ping once: ARP request/reply, ICMP echo request/reply;
#       2. default options: handshake (MSS, SACK-permitted, timestamps, window scale),
#          a small request/response, FIN close;
#       3. a SYN to a closed port, answered by RST/ACK;
#       4. the same exchange as 2 with net.ipv4.tcp_timestamps=0 in the client namespace;
#       5. with net.ipv4.tcp_sack=0;
#       6. with timestamps, SACK and window scaling all off (MSS only);
#   - deletes both namespaces on exit (trap), whatever happened.
#
# Needs: root, ip (iproute2), ss, tcpdump, ethtool, ping (iputils-ping), python3.
# On Debian: apt-get install -y iproute2 tcpdump ethtool iputils-ping python3
set -euo pipefail

out=${1:?usage: capture.sh OUT.pcap}
out=$(realpath -m "$out")

nsa=ss-cap-a
nsb=ss-cap-b
ipa=198.18.0.1
ipb=198.18.0.2
port=8080
closed_port=9

for tool in ip ss tcpdump ethtool ping python3; do
	command -v "$tool" >/dev/null || { echo "capture.sh: $tool not found" >&2; exit 1; }
done

work=$(mktemp -d)
tcpdump_pid=
server_pid=

cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
	[ -n "$tcpdump_pid" ] && kill "$tcpdump_pid" 2>/dev/null || true
	ip netns del "$nsa" 2>/dev/null || true
	ip netns del "$nsb" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$nsa"
ip netns add "$nsb"
ip link add ss-cap-va netns "$nsa" type veth peer name ss-cap-vb netns "$nsb"

for ns in "$nsa" "$nsb"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
	ip netns exec "$ns" ip link set lo up
done
ip netns exec "$nsa" ip addr add "$ipa/24" dev ss-cap-va
ip netns exec "$nsb" ip addr add "$ipb/24" dev ss-cap-vb
ip netns exec "$nsa" ethtool -K ss-cap-va tx off >/dev/null
ip netns exec "$nsb" ethtool -K ss-cap-vb tx off >/dev/null
ip netns exec "$nsa" ip link set ss-cap-va up
ip netns exec "$nsb" ip link set ss-cap-vb up

# The server: accept connections one at a time, answer one line with one line, and close
# after the client does (the client sends the first FIN).
cat >"$work/server.py" <<'PY'
import socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((host, port))
ls.listen(16)
for _ in range(count):
    c, _ = ls.accept()
    data = b""
    while not data.endswith(b"\n"):
        chunk = c.recv(256)
        if not chunk:
            break
        data += chunk
    c.sendall(b"pong " + data)
    while c.recv(256):
        pass
    c.close()
PY

# The client: one exchange, or one refused connection when the third argument is "refused".
cat >"$work/client.py" <<'PY'
import socket, sys
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect((host, port))
except ConnectionRefusedError:
    if mode == "refused":
        sys.exit(0)
    raise
if mode == "refused":
    sys.exit("expected a refused connection")
s.sendall(b"ping\n")
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(256)
    if not chunk:
        break
    data += chunk
assert data == b"pong ping\n", data
s.close()
PY

ip netns exec "$nsb" tcpdump -i ss-cap-vb -U -w "$work/cap.pcap" 2>"$work/tcpdump.log" &
tcpdump_pid=$!
for _ in $(seq 100); do
	grep -q "listening on" "$work/tcpdump.log" 2>/dev/null && break
	sleep 0.1
done
grep -q "listening on" "$work/tcpdump.log" || { cat "$work/tcpdump.log" >&2; exit 1; }

ip netns exec "$nsb" python3 "$work/server.py" "$ipb" "$port" 4 &
server_pid=$!
for _ in $(seq 100); do
	ip netns exec "$nsb" ss -ltnH "sport = :$port" | grep -q . && break
	sleep 0.1
done

exchange() {
	ip netns exec "$nsa" python3 "$work/client.py" "$ipb" "$1" "$2"
	sleep 0.3
}
client_sysctl() {
	ip netns exec "$nsa" sysctl -qw "$@"
}

# 1. ARP and ICMP.
ip netns exec "$nsa" ping -c 1 -W 2 "$ipb" >/dev/null
sleep 0.3
# 2. Default Linux options.
exchange "$port" ok
# 3. RST from a closed port.
exchange "$closed_port" refused
# 4. No timestamps.
client_sysctl net.ipv4.tcp_timestamps=0
exchange "$port" ok
client_sysctl net.ipv4.tcp_timestamps=1
# 5. No SACK.
client_sysctl net.ipv4.tcp_sack=0
exchange "$port" ok
client_sysctl net.ipv4.tcp_sack=1
# 6. MSS only.
client_sysctl net.ipv4.tcp_timestamps=0 net.ipv4.tcp_sack=0 net.ipv4.tcp_window_scaling=0
exchange "$port" ok

wait "$server_pid"
server_pid=
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
tcpdump_pid=
cp "$work/cap.pcap" "$out"
echo "capture.sh: wrote $(tcpdump -r "$out" 2>/dev/null | wc -l) packets to $out"
