#!/usr/bin/env bash
# What Linux itself does with listen(fd, N): how many half-open requests the SYN queue keeps
# (tcp_syncookies=0) and how many established children the accept queue keeps when nobody
# calls accept(2). Two network namespaces joined by a veth pair, addresses in 198.18.0.0/15
# only; needs root, iproute2, python3 and hping3. Output is recorded in README.md here.
set -euo pipefail
A=ss-lq-a B=ss-lq-b
cleanup() { ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add $A
ip netns add $B
ip link add lqa type veth peer name lqb
ip link set lqa netns $A
ip link set lqb netns $B
ip -n $A addr add 198.18.6.1/24 dev lqa
ip -n $B addr add 198.18.6.2/24 dev lqb
ip -n $A link set lqa up
ip -n $B link set lqb up
ip netns exec $B sysctl -qw net.ipv4.tcp_syncookies=0
# SYN-ACKs to the spoofed source go to a MAC nobody has, so requests stay half-open.
ip -n $B neigh add 198.18.6.50 lladdr 02:00:00:00:00:77 dev lqb
echo "kernel $(uname -r)"
echo "SYN queue, tcp_syncookies=0, N+6 SYNs from a silent source:"
for N in 0 1 2 4 8; do
	ip netns exec $B python3 -c "
import socket,time
s=socket.socket(); s.bind(('198.18.6.2', 8000+$N)); s.listen($N); time.sleep(5)" &
	P=$!
	sleep 0.5
	ip netns exec $A hping3 -q -S -a 198.18.6.50 -p $((8000 + N)) -c $((N + 6)) -i u20000 198.18.6.2 >/dev/null 2>&1 || true
	sleep 0.5
	echo "  listen(fd, $N): SYN-RECV $(ip netns exec $B ss -tan state syn-recv sport = :$((8000 + N)) | tail -n +2 | wc -l)"
	kill $P 2>/dev/null || true
	wait $P 2>/dev/null || true
done
echo "accept queue, 5 connects, no accept:"
for N in 0 1 2; do
	ip netns exec $B python3 -c "
import socket,time
s=socket.socket(); s.bind(('198.18.6.2', 9000+$N)); s.listen($N); time.sleep(4)" &
	P=$!
	sleep 0.5
	ip netns exec $A python3 -c "
import socket,time
socks=[]
for i in range(5):
    s=socket.socket(); s.setblocking(False)
    try: s.connect(('198.18.6.2', 9000+$N))
    except BlockingIOError: pass
    socks.append(s)
time.sleep(1.5)" &
	C=$!
	sleep 1.2
	echo "  listen(fd, $N): ESTAB children $(ip netns exec $B ss -tan state established sport = :$((9000 + N)) | tail -n +2 | wc -l); $(ip netns exec $B ss -ltn sport = :$((9000 + N)) | tail -n 1 | awk '{print "Recv-Q " $2 " Send-Q " $3}')"
	wait $C || true
	kill $P 2>/dev/null || true
	wait $P 2>/dev/null || true
done
