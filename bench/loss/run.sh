#!/usr/bin/env bash
# Bulk transfer under loss over veths (run as root): 10 flows x 1 MiB, every byte hashed by
# the receiver and checked by the sender (bench/cmd/flows, the workload of BenchmarkLoss),
# on Linux's own TCP (both ends, Go's net) and on shardstack over AF_PACKET (both ends),
# from a sender namespace to a receiver namespace through a third, the wire: a Linux
# bridge between two veths. TSO, GSO and GRO are off on every veth end, and an nftables
# rule on the wire's port towards the receiver drops N per mille of the data segments, at
# N = 0, 10 and 50 (0%, 1%, 5%). Each sender makes one small unmeasured run first (its
# drops, a few at most, are in the drop count). It prints a side-by-side table: median ms
# per run, the ratio to the same stack's lossless run, retransmissions and drops per run.
#
#   bench/loss/run.sh [runs per cell, default 3]
#   LEVELS="0 10 50" DEADLINE=60s FLOWS=10 BYTES=1048576 bench/loss/run.sh 3
#   LINKOPTS=,rxring,txring bench/loss/run.sh 3     # shardstack's AF_PACKET options
#   LINKOPTS=,gso LEVELS="0 10" bench/loss/run.sh 3 # the sender hands the kernel GSO super-packets
#
# Why a wire namespace and not the rule on one of the two ends of a single veth: Linux's
# TCP builds GSO packets of many segments whatever ethtool says (with gso off the kernel
# segments them in software, after the egress hook), so an egress rule on Linux's sending
# end sees, and drops, 17-segment bursts; and on the receiving end a netdev ingress rule
# runs after the AF_PACKET taps, so shardstack's receiver would see the frames it drops.
# Frames that cross the bridge are single segments (GRO is off where they arrive), and
# its port's egress hook sees them before either receiver can, for both stacks alike.
#
# Reordering is not measured here: this kernel has no netem, and nothing else in its
# nftables or tc can hold a packet back (no fq, etf or skbedit for an EDT timestamp, no
# gact, no NFQUEUE; htb and tbf delay only a class that already has a backlog).
# BenchmarkLoss measures it in process.
#
# Addresses stay in 198.18.0.0/15, inside namespaces this script makes and removes, even
# when a step fails or the script is interrupted.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
levels=${LEVELS:-0 10 50}
deadline=${DEADLINE:-60s}
nflows=${FLOWS:-10}
nbytes=${BYTES:-1048576}
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (network namespaces, nftables)" >&2; exit 1; }
for tool in ip nft ethtool python3; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done

tmp=$(mktemp -d)
tag=ssl$$
cns=$tag-c sns=$tag-s wns=$tag-w # sender (client), receiver (server) and wire namespaces
cdev=fc0 sdev=fs0 wdev=ws0         # the sender's and receiver's ends; the wire's port to the receiver
cleanup() {
	for ns in "$sns" "$cns" "$wns"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
	done
	for ns in "$sns" "$cns" "$wns"; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$tmp/flows" ./bench/cmd/flows
for ns in "$cns" "$sns" "$wns"; do
	ip netns add "$ns"
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip -n "$ns" link set lo up
done
ip link add "$cdev" netns "$cns" type veth peer name wc0 netns "$wns"
ip link add "$sdev" netns "$sns" type veth peer name "$wdev" netns "$wns"
ip -n "$wns" link add br0 type bridge
for end in "$cns $cdev" "$sns $sdev" "$wns wc0" "$wns $wdev"; do
	set -- $end
	ip netns exec "$1" ethtool -K "$2" tso off gso off gro off
	[ "$1" = "$wns" ] && ip -n "$1" link set "$2" master br0
	ip -n "$1" link set "$2" up
done
ip -n "$wns" link set br0 up

# The drop rule. A netdev egress chain on the wire's port to the receiver sees every frame
# the bridge forwards there, one segment each, before the receiver's AF_PACKET socket or
# kernel does. A TCP segment carries data exactly when
# the IPv4 total length (ip length) exceeds the IP header (ip hdrlength x 4; both stacks
# send 20-byte headers, hdrlength 5) plus the TCP header (tcp doff x 4, which grows with
# the options: 20 bytes bare, 32 with timestamps, up to 60). nft cannot subtract one field
# from another, so there is one rule per data offset, each with its own threshold; a packet
# matches at most one, and numgen draws only for a data segment, so N per mille of data
# segments are dropped, and SYNs, pure ACKs and FINs always pass.
ip netns exec "$wns" nft -f - <<EOF
table netdev flows {
	chain egress_$wdev { type filter hook egress device "$wdev" priority filter; policy accept; }
}
EOF
set_drop() { # per mille of data segments
	{
		echo "flush chain netdev flows egress_$wdev"
		if [ "$1" -gt 0 ]; then
			for doff in $(seq 5 15); do
				echo "add rule netdev flows egress_$wdev ip protocol tcp ip hdrlength 5 tcp doff $doff ip length > $((20 + 4 * doff)) numgen random mod 1000 < $1 counter drop"
			done
		fi
	} | ip netns exec "$wns" nft -f -
}
dropped() {
	ip netns exec "$wns" nft list chain netdev flows "egress_$wdev" | awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'
}

# cell STACK LEVEL: one receiver, one sender doing $runs runs, the drops they met.
cell() {
	local stk=$1 level=$2 sargs cargs out=$tmp/$1-$2
	if [ "$stk" = linux ]; then
		ip -n "$sns" addr add 198.18.0.1/24 dev "$sdev"
		ip -n "$cns" addr add 198.18.0.2/24 dev "$cdev"
		sargs=(--link kernel)
		cargs=(--link kernel)
	else # no kernel address on either end: the stacks own them
		sargs=(--link "afpacket:$sdev${LINKOPTS:-}" --addr 198.18.0.1/24)
		cargs=(--link "afpacket:$cdev${LINKOPTS:-}" --addr 198.18.0.2/24)
	fi
	set_drop "$level"
	ip netns exec "$sns" "$tmp/flows" serve "${sargs[@]}" --listen 198.18.0.1:9000 2>"$out.serve" &
	local spid=$!
	for _ in $(seq 100); do grep -q serving "$out.serve" && break; sleep 0.1; done
	grep -q serving "$out.serve" || { cat "$out.serve" >&2; exit 1; }
	# In the background, so that a signal's trap runs at once rather than after the runs.
	ip netns exec "$cns" "$tmp/flows" send "${cargs[@]}" --target 198.18.0.1:9000 --flows "$nflows" --bytes "$nbytes" \
		--runs "$runs" --deadline "$deadline" --label "$stk/$level" --json >"$out.json" 2>"$out.send" &
	wait $! || true
	dropped >"$out.drops"
	kill -INT "$spid"
	wait "$spid" || true
	if [ "$stk" = linux ]; then
		ip -n "$sns" addr del 198.18.0.1/24 dev "$sdev"
		ip -n "$cns" addr del 198.18.0.2/24 dev "$cdev"
	fi
	[ -s "$out.json" ] || { echo "run.sh: $stk at $level per mille printed nothing:" >&2; cat "$out.send" >&2; }
}

echo "$(date -u +%F) $(nproc) CPUs, $(uname -r); $nflows flows x $nbytes bytes, $runs runs per cell, deadline $deadline"
for level in $levels; do
	for stk in linux shardstack; do
		cell "$stk" "$level"
	done
done

python3 - "$tmp" "$runs" $levels <<'PY'
import json, os, sys
tmp, runs, levels = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def load(stk, lv):
    p = f"{tmp}/{stk}-{lv}"
    try:
        r = json.load(open(p + ".json"))
    except (OSError, ValueError):
        return None
    r["drops"] = int(open(p + ".drops").read().strip() or 0)
    return r
cells = {(s, lv): load(s, lv) for s in ("linux", "shardstack") for lv in levels}
print(f"\n{'data loss':>9} | {'Linux ms':>9} {'x 0%':>6} {'retrans':>8} {'drops':>6} | {'shardstack ms':>13} {'x 0%':>6} {'retrans':>8} {'drops':>6}")
print("-" * 9 + "-+-" + "-" * 32 + "-+-" + "-" * 36)
for lv in levels:
    row = f"{int(lv)/10:>8.1f}% |"
    for s, w in (("linux", 9), ("shardstack", 13)):
        r, base = cells[(s, lv)], cells[(s, levels[0])]
        if not r:
            row += f" {'no result':>{w}} {'':>6} {'':>8} {'':>6} |"
            continue
        ms = f"{r['median_ms']:.1f}" + ("*" if r["failed_runs"] else "")
        ratio = f"{r['median_ms']/base['median_ms']:.2f}" if base and base["median_ms"] else "-"
        row += f" {ms:>{w}} {ratio:>6} {r['retrans_per_run']:>8.0f} {r['drops']/max(len(r['runs_ms']),1):>6.0f} |"
    print(row.rstrip("|"))
print(f"\nmedian of {runs} runs; x 0% is the ratio to the same stack's first level; retransmissions and drops per run.")
for (s, lv), r in cells.items():
    if r and r["failed_runs"]:
        print(f"* {s} at {int(lv)/10:.1f}%: {r['failed_runs']} of {len(r['runs_ms'])} runs failed (counted at the deadline): {r['first_error']}")
    if r:
        print(f"  {s} at {int(lv)/10:.1f}%: runs {', '.join(f'{m:.1f}' for m in r['runs_ms'])} ms")
PY
