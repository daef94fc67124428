#!/usr/bin/env bash
# Connection-rate benchmark over a veth (run as root): the same `shardstack load` generator,
# on AF_PACKET in one namespace, against (a) Linux's own TCP stack serving the hello
# application (serve --link kernel) and (b) shardstack serving it on AF_PACKET, one after the
# other over the same veth pair. It prints one line per server with connections per second,
# the server's CPU time per connection (the server process's user+system time from
# /proc/PID/stat, and the whole machine's busy time from /proc/stat, which also holds the
# kernel's softirq work that Linux does for its sockets outside the server process), packets
# per syscall and the hand-off fraction.
#
#   bench/link/run.sh [seconds] [extra serve flags for shardstack...]
#   LOAD_FLAGS="--concurrency 1024" bench/link/run.sh    (flags for the measured load run)
#
# Addresses stay in 198.18.0.0/15, inside namespaces this script makes and removes.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
shift || true
extra=("$@")
bin=$(mktemp -d)/shardstack
go build -o "$bin" ./cmd/shardstack
tag=ssb$$
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
ip -n "$lg" link set lo up
ip -n "$srv" link set lo up
for ns in "$lg" "$srv"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done

busy() { # the machine's busy jiffies (everything but idle and iowait)
	awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat
}
proc_cpu() { # a process's user+system jiffies
	awk '{print $14+$15}' "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)

# run NAME SERVE-ARGS...: start serve in the server namespace, load it for $secs, stop it.
run() {
	local name=$1
	shift
	local out
	out=$(mktemp -d)
	ip netns exec "$srv" "$bin" serve --app hello --listen :8080 --json "$@" >"$out/serve.json" 2>"$out/serve.err" &
	local pid=$!
	for _ in $(seq 100); do grep -q serving "$out/serve.err" && break; sleep 0.1; done
	grep -q serving "$out/serve.err" || { cat "$out/serve.err"; exit 1; }
	# A short warm-up resolves ARP and fills pools.
	ip netns exec "$lg" "$bin" load --link afpacket:lg0 --addr 198.18.0.2/24 --target 198.18.0.1:8080 --conns 2000 --json >/dev/null
	local b0 p0 b1 p1
	b0=$(busy)
	p0=$(proc_cpu "$pid")
	ip netns exec "$lg" "$bin" load --link afpacket:lg0 --addr 198.18.0.2/24 --target 198.18.0.1:8080 \
		--duration "$secs" --json ${LOAD_FLAGS:-} >"$out/load.json" || true
	b1=$(busy)
	p1=$(proc_cpu "$pid")
	kill -INT "$pid"
	wait "$pid" || true
	python3 - "$name" "$out" "$((p1 - p0))" "$((b1 - b0))" "$hz" <<'PY'
import json, sys
name, out, pj, bj, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
load = json.load(open(out + "/load.json"))
srv = json.load(open(out + "/serve.json"))
conns = max(load["conns"], 1)
def per_syscall(qs, k, busy=False):
    p = sum(q[k + "_packets"] for q in qs)
    c = sum(q[k + "_syscalls"] - (q.get("rx_empty_syscalls", 0) if busy else 0) for q in qs)
    return p / c if c else 0.0
def handoff(shards):
    rx = sum(s["rx_packets"] for s in shards)
    return sum(s["handoffs"] for s in shards) / rx if rx else 0.0
sq, lq = srv.get("link_queues") or [], load.get("link_queues") or []
print(f"{name:34s} {load['conns_per_sec']:9.0f} conn/s  failures {load['failures']}  "
      f"server cpu {1e6*pj/hz/conns:6.1f} us/conn (machine {1e6*bj/hz/conns:6.1f})  "
      f"server pkts/syscall rx {per_syscall(sq,'rx'):5.1f} (busy {per_syscall(sq,'rx',True):5.1f}) tx {per_syscall(sq,'tx'):5.1f}  "
      f"load rx/tx {per_syscall(lq,'rx'):5.1f}/{per_syscall(lq,'tx'):5.1f}  "
      f"hand-offs server {100*handoff(srv.get('shards') or []):.3f}% load {100*handoff(load.get('shards') or []):.3f}%  "
      f"p50 {load['conn_p50_us']:.0f} us p99 {load['conn_p99_us']:.0f} us")
PY
}

echo "$(date -u +%F) $(nproc) CPUs, $(uname -r); load: shardstack load on AF_PACKET, ${secs}s per run"
# (a) Linux: the server namespace's kernel owns 198.18.0.1.
ip -n "$srv" addr add 198.18.0.1/24 dev sv0
run "Linux (serve --link kernel)" --link kernel
ip -n "$srv" addr del 198.18.0.1/24 dev sv0
# (b) shardstack on the same veth end, which no longer has an address in the kernel.
run "shardstack AF_PACKET" --link afpacket:sv0 --addr 198.18.0.1/24 "${extra[@]}"
run "shardstack AF_PACKET events" --link afpacket:sv0 --addr 198.18.0.1/24 --api events "${extra[@]}"
run "shardstack AF_PACKET rxring events" --link afpacket:sv0,rxring --addr 198.18.0.1/24 --api events "${extra[@]}"
