#!/usr/bin/env bash
# Connection rate over TUN against AF_PACKET, with the same generator in one run (as root).
# The generator is always `shardstack load` (the hello exchange: connect, one HTTP/1.0
# request, the reply up to the server's FIN, close); what changes is its link and server:
#
#   afpacket -> Linux      load on a veth end through AF_PACKET, Linux's TCP on the other
#                          end in another namespace (serve --link kernel --app hello)
#   tun -> Linux           load on a multi-queue TUN device, Linux's TCP on the device's
#                          own side in the same namespace (the same kernel server)
#   tun,vnet / tun,nosteer the same with the virtio-net header, or without the steering
#                          program (the kernel's automatic steering)
#   afpacket -> shardstack load and serve --link afpacket, one veth between them
#   tun -> fwd -> shardstack load and serve each on a TUN device of one namespace, Linux
#                          forwarding between the two devices (one more hop than the veth)
#
#   bench/tun/run.sh [seconds]          LOAD_FLAGS="--concurrency 1024" bench/tun/run.sh 10
#
# Prints one line per case: connections per second, failures, the machine's busy CPU per
# connection (/proc/stat: the kernel's work for either side included), the load side's
# packets per receive and transmit system call, and its hand-off fraction. Addresses stay
# in 198.18.0.0/15, inside namespaces this script makes and removes.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
bin=$(mktemp -d)/shardstack
go build -o "$bin" ./cmd/shardstack
tag=sst$$
lg=$tag-lg srv=$tag-srv tn=$tag-tun
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	for ns in "$lg" "$srv" "$tn"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
}
trap cleanup EXIT
for ns in "$lg" "$srv" "$tn"; do
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip link add lg0 netns "$lg" type veth peer name sv0 netns "$srv"
ip -n "$lg" link set lg0 up
ip -n "$srv" link set sv0 up
# The TUN namespace: sst0 is the load generator's device (Linux 198.18.0.1 peer 198.18.0.2);
# for the shardstack server, sst1 takes 198.18.0.1 instead (Linux 198.18.1.1 peer 198.18.0.1)
# and Linux forwards between the two.
ip -n "$tn" tuntap add dev sst0 mode tun multi_queue
ip -n "$tn" tuntap add dev sst1 mode tun multi_queue
ip netns exec "$tn" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
hz=$(getconf CLK_TCK)

# server NS ARGS...: start serve in NS, wait until it listens.
server() {
	local ns=$1
	shift
	out=$(mktemp -d)
	local listens=()
	for p in $(seq 8080 8099); do listens+=(--listen ":$p"); done
	ip netns exec "$ns" "$bin" serve --app hello "${listens[@]}" --json "$@" >"$out/serve.json" 2>"$out/serve.err" &
	spid=$!
	pids+=("$spid")
	for _ in $(seq 100); do grep -q serving "$out/serve.err" && break; sleep 0.1; done
	grep -q serving "$out/serve.err" || { cat "$out/serve.err"; exit 1; }
}
stop_server() { kill -INT "$spid"; wait "$spid" || true; }

# measure NAME NS LINK: a warm-up, then the measured load, and the line. Each load run
# targets a server port of its own: Linux keeps its side of every closed connection in
# TIME-WAIT for 60 s, and a new load process (new ISN and timestamp secrets) that reused
# one of those 4-tuples would have half its SYNs answered with the old connection's ACK,
# then reset and retried a second later.
port=8080
measure() {
	local name=$1 ns=$2 link=$3
	ip netns exec "$ns" "$bin" load --link "$link" --addr 198.18.0.2/24 --target 198.18.0.1:$port --conns 2000 --json >/dev/null
	local b0 b1
	b0=$(busy)
	ip netns exec "$ns" "$bin" load --link "$link" --addr 198.18.0.2/24 --target 198.18.0.1:$((port + 1)) \
		--duration "$secs" --json ${LOAD_FLAGS:-} >"$out/load-$port.json" || true
	b1=$(busy)
	python3 - "$name" "$out/load-$port.json" "$((b1 - b0))" "$hz" <<'PY'
import json, sys
name, path, bj, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
load = json.load(open(path))
conns = max(load["conns"], 1)
qs = load.get("link_queues") or []
def per(k):
    p = sum(q[k + "_packets"] for q in qs); c = sum(q[k + "_syscalls"] for q in qs)
    return p / c if c else 0.0
sh = load.get("shards") or []
rx = sum(s["rx_packets"] for s in sh)
ho = sum(s["handoffs"] for s in sh) / rx if rx else 0.0
print(f"{name:28s} {load['conns_per_sec']:8.0f} conn/s  failures {load['failures']}  "
      f"machine cpu {1e6*bj/hz/conns:6.1f} us/conn  load pkts/syscall rx {per('rx'):4.2f} tx {per('tx'):4.2f}  "
      f"hand-offs {100*ho:.3f}%  p50 {load['conn_p50_us']:.0f} us p99 {load['conn_p99_us']:.0f} us")
PY
	port=$((port + 2))
}

echo "$(date -u +%F) $(nproc) CPUs, $(uname -r); shardstack load, ${secs}s per case ${LOAD_FLAGS:-}"
# Linux servers: on the veth end, and on the TUN device's Linux side.
ip -n "$srv" addr add 198.18.0.1/24 dev sv0
server "$srv" --link kernel
measure "afpacket -> Linux" "$lg" afpacket:lg0
stop_server
ip -n "$tn" addr add 198.18.0.1 peer 198.18.0.2/32 dev sst0
server "$tn" --link kernel
measure "tun -> Linux" "$tn" tun:sst0
measure "tun,vnet -> Linux" "$tn" tun:sst0,vnet
measure "tun,nosteer -> Linux" "$tn" tun:sst0,nosteer
stop_server
# shardstack servers.
ip -n "$srv" addr del 198.18.0.1/24 dev sv0
server "$srv" --link afpacket:sv0 --addr 198.18.0.1/24
measure "afpacket -> shardstack" "$lg" afpacket:lg0
stop_server
ip -n "$tn" addr del 198.18.0.1 peer 198.18.0.2/32 dev sst0
ip -n "$tn" addr add 198.18.1.2 peer 198.18.0.2/32 dev sst0
ip -n "$tn" addr add 198.18.1.1 peer 198.18.0.1/32 dev sst1
server "$tn" --link tun:sst1 --addr 198.18.0.1/24
measure "tun -> fwd -> shardstack" "$tn" tun:sst0
stop_server
