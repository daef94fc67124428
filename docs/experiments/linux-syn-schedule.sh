#!/usr/bin/env bash
# Linux's SYN retransmission schedule to a silent peer, and when connect(2) gives up.
# A network namespace with a veth pair and a neighbour entry for an address nobody owns;
# addresses in 198.18.0.0/15 only. Needs root, iproute2, tcpdump, python3. Takes ~140 s.
set -euo pipefail
A=ss-ss-a B=ss-ss-b
cleanup() { ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add $A
ip netns add $B
ip link add ssa type veth peer name ssb
ip link set ssa netns $A
ip link set ssb netns $B
ip -n $A addr add 198.18.5.1/24 dev ssa
ip -n $B addr add 198.18.5.2/24 dev ssb
ip -n $A link set ssa up
ip -n $B link set ssb up
ip -n $A neigh add 198.18.5.3 lladdr 02:00:00:00:00:99 dev ssa
echo "kernel $(uname -r), $(ip netns exec $A sysctl net.ipv4.tcp_syn_retries net.ipv4.tcp_syn_linear_timeouts | tr '\n' ' ')"
out=$(mktemp)
ip netns exec $A tcpdump -i ssa -n -tt -l 'tcp[tcpflags] & tcp-syn != 0' >"$out" 2>/dev/null &
TD=$!
sleep 1
ip netns exec $A python3 -c '
import socket,time
s=socket.socket(); t=time.time()
try:
    s.connect(("198.18.5.3", 80))
except Exception as e:
    print("connect failed after %.2f s: %s" % (time.time()-t, e))'
sleep 1
kill $TD
echo "SYNs at: $(awk 'NR==1{t0=$1} {printf "%.2f ", $1-t0}' "$out")"
rm -f "$out"
