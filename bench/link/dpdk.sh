#!/usr/bin/env bash
# The three link backends side by side over one veth (run as root, with libdpdk-dev and
# pkg-config installed): the same `shardstack load` generator (AF_PACKET, without the
# virtio-net header so that its frames carry whole checksums) against `shardstack serve
# --app hello` on (a) AF_PACKET with recvmmsg/sendmmsg, (b) AF_PACKET with TPACKET_V3
# rings (rxring,txring) and (c) DPDK's net_af_packet PMD on the same veth end. One line per
# server: connections per second, the server process's CPU time per connection
# (user+system from /proc/PID/stat; a DPDK shard polls, so its idle time is counted too),
# packets per receive call that found frames and per transmit call, cgo calls per packet
# moved (DPDK: bursts, bulk allocations and frees), hand-offs between shards.
#
#   bench/link/dpdk.sh [seconds] [shards]
#   LOAD_FLAGS="--concurrency 1024" bench/link/dpdk.sh 10 2
#
# Addresses stay in 198.18.0.0/15, inside namespaces this script makes and removes.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
shards=${2:-2}
bin=$(mktemp -d)/shardstack
go build -tags dpdk -o "$bin" ./cmd/shardstack
tag=ssd$$
lg=$tag-lg srv=$tag-srv
cleanup() {
	for p in $(ip netns pids "$srv" 2>/dev/null) $(ip netns pids "$lg" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
	ip netns del "$lg" 2>/dev/null || true
	ip netns del "$srv" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$lg"
ip netns add "$srv"
ip link add lg0 netns "$lg" type veth peer name sv0 netns "$srv"
ip -n "$lg" link set lg0 up
ip -n "$srv" link set sv0 up
for ns in "$lg" "$srv"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
proc_cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
loadlink=afpacket:lg0,novnet

run() {
	local name=$1
	shift
	local out
	out=$(mktemp -d)
	ip netns exec "$srv" "$bin" serve --app hello --listen :8080 --addr 198.18.0.1/24 --shards "$shards" --json "$@" \
		>"$out/serve.json" 2>"$out/serve.err" &
	local pid=$!
	for _ in $(seq 100); do grep -q serving "$out/serve.err" && break; sleep 0.1; done
	grep -q serving "$out/serve.err" || { cat "$out/serve.err"; exit 1; }
	ip netns exec "$lg" "$bin" load --link "$loadlink" --addr 198.18.0.2/24 --target 198.18.0.1:8080 --conns 2000 --json >/dev/null
	local p0 p1
	p0=$(proc_cpu "$pid")
	ip netns exec "$lg" "$bin" load --link "$loadlink" --addr 198.18.0.2/24 --target 198.18.0.1:8080 \
		--duration "$secs" --json ${LOAD_FLAGS:-} >"$out/load.json" || true
	p1=$(proc_cpu "$pid")
	kill -INT "$pid"
	wait "$pid" || true
	python3 - "$name" "$out" "$((p1 - p0))" "$hz" <<'PY'
import json, sys
name, out, pj, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
load = json.load(open(out + "/load.json"))
srv = json.load(open(out + "/serve.json"))
conns = max(load["conns"], 1)
qs = srv.get("link_queues") or []
rxp = sum(q["rx_packets"] for q in qs)
txp = sum(q["tx_packets"] for q in qs)
rxc = sum(q["rx_syscalls"] - q.get("rx_empty_syscalls", 0) for q in qs)
txc = sum(q["tx_syscalls"] for q in qs)
empty = sum(q.get("rx_empty_syscalls", 0) for q in qs)
cgo = sum(q.get("cgo_calls", 0) for q in qs)
rx = sum(s["rx_packets"] for s in srv.get("shards") or [])
ho = sum(s["handoffs"] for s in srv.get("shards") or [])
rxs = f"{rxp / rxc:5.1f}" if rxc and rxp / rxc < 1024 else " ring"  # TPACKET_V3: frames read from memory, no call each
cg = f"cgo calls/pkt {(cgo - empty) / max(rxp + txp, 1):4.2f} (+{empty / max(rxp + txp, 1):.1f} empty polls)" if cgo else "cgo calls/pkt    -"
print(f"{name:32s} {load['conns_per_sec']:7.0f} conn/s  failures {load['failures']}  "
      f"server cpu {1e6 * pj / hz / conns:6.1f} us/conn  pkts/call rx {rxs} tx {txp / max(txc, 1):5.1f}  "
      f"{cg}  hand-offs {100 * ho / max(rx, 1):4.1f}%  p50 {load['conn_p50_us']:.0f} us p99 {load['conn_p99_us']:.0f} us")
PY
}

echo "$(date -u +%F) $(nproc) CPUs, $(uname -r); load: shardstack load on $loadlink, ${secs}s per run, $shards server shards"
run "AF_PACKET recvmmsg" --link afpacket:sv0
run "AF_PACKET TPACKET_V3 rx+tx rings" --link afpacket:sv0,rxring,txring
run "DPDK net_af_packet" --link "dpdk:--no-huge -m 512 --no-shconf --no-pci --no-telemetry -l 0 --log-level=4 --vdev=net_af_packet0,iface=sv0,qpairs=$shards"
