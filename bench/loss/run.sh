#!/usr/bin/env bash
# Bulk transfer under loss over veths (run as root): 10 flows x 1 MiB, every byte hashed by
# the receiver and checked by the sender (bench/cmd/flows, the workload of BenchmarkLoss),
# on Linux's own TCP (both ends, Go's net) and on shardstack over AF_PACKET (both ends),
# beside shardstack in process (BenchmarkLoss's case for the same level, both stacks in one
# process over the in-memory pair, its hook dropping the same share of data segments),
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
#   FLOWOPTS="--busy-poll --shards 2" bench/loss/run.sh 3 # flows' own options, shardstack's ends
#   FAMILY=6 bench/loss/run.sh 3                    # the same over IPv6
#   STACKS="linux shardstack tun tun,vnet,gso" bench/loss/run.sh 3
#   STACKS="linux inproc" bench/loss/run.sh 15     # Linux over the veth beside BenchmarkLoss
#   PCAP=/tmp/loss bench/loss/run.sh 1              # keep the wire's captures per cell
#   LOGS=/tmp/loss bench/loss/run.sh 1              # keep each end's log (shardstack's counters)
#
# FAMILY=6 gives the ends fd00:198:18::1/64 (receiver) and ::2/64 (sender) instead of
# 198.18.0.1/24 and .2/24, leaves IPv6 on in the namespaces (Linux's and shardstack's
# ends then find each other by neighbour discovery through the bridge), and the drop rule
# matches IPv6 data segments. STACKS names the columns, in order (default "linux inproc
# shardstack", without inproc for IPv6 or other levels): linux, shardstack (over
# AF_PACKET, with LINKOPTS), inproc (BenchmarkLoss's case for the level, in this process's
# namespace, no link; levels 0, 10 and 50 only, IPv4), and tun[,OPTIONS]: shardstack
# over a TUN device at both ends (tun,vnet,gso: with the virtio-net header and GSO both
# ways), each end's namespace
# kernel forwarding between its TUN device and its veth, so that the wire carries the
# same single segments as for the others: the kernel's own addresses are 198.18.1.1 and
# .2/24 on the veths (fd00:198:18:1::1 and ::2/64) and 198.18.2.1 and .2 on the TUN
# devices (fd00:198:18:2::1 and ::2), point to point with the stack's address behind
# each; a route to the far stack's address goes through the far kernel's veth. With gso a
# sender's super-packet leaves its TUN device whole and the kernel segments it in software
# when it forwards it to the veth (gso off there); the receiving veth has GRO off, so its
# kernel forwards single segments into the receiver's TUN device. PCAP=DIR writes what
# enters the wire from the sender (wc0, before the rule) and what leaves it towards the
# receiver (ws0, after the rule: egress hooks run before AF_PACKET taps) for each cell;
# LOGS=DIR keeps each end's log, where flows writes shardstack's link figures and non-zero
# counters. Frames the kernel dropped at shardstack's links (a TUN device's queue full, an
# AF_PACKET socket's buffer) are not the wire's drops: a cell that had any says so in its
# footnote.
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
# Addresses stay in 198.18.0.0/15 (IPv6: fd00::/8), inside namespaces this script makes and
# removes (with their veths and TUN devices), even when a step fails or the script is
# interrupted.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
levels=${LEVELS:-0 10 50}
deadline=${DEADLINE:-60s}
nflows=${FLOWS:-10}
nbytes=${BYTES:-1048576}
family=${FAMILY:-4}
# The default columns: Linux, shardstack in process (BenchmarkLoss, where it has the
# levels and the family) and shardstack over AF_PACKET.
default_stacks="linux inproc shardstack"
[ "$family" = 4 ] || default_stacks="linux shardstack"
for level in $levels; do
	case $level in 0 | 10 | 50) ;; *) default_stacks="linux shardstack" ;; esac
done
stacks=${STACKS:-$default_stacks}
pcapdir=${PCAP:-}
logdir=${LOGS:-}
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (network namespaces, nftables)" >&2; exit 1; }
for tool in ip nft ethtool python3 ${pcapdir:+tcpdump}; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done
# The stacks' addresses (receiver, sender), and for the TUN stacks the kernels' own: on
# the veths (fsrv, fcli) and on the TUN devices (tsrv, tcli).
case $family in
4)
	srv=198.18.0.1 cli=198.18.0.2 plen=24 hostlen=32
	fsrv=198.18.1.1 fcli=198.18.1.2 tsrv=198.18.2.1 tcli=198.18.2.2
	forward=net.ipv4.ip_forward
	;;
6)
	srv=fd00:198:18::1 cli=fd00:198:18::2 plen=64 hostlen=128
	fsrv=fd00:198:18:1::1 fcli=fd00:198:18:1::2 tsrv=fd00:198:18:2::1 tcli=fd00:198:18:2::2
	forward=net.ipv6.conf.all.forwarding
	;;
*) echo "run.sh: FAMILY=$family: want 4 or 6" >&2; exit 2 ;;
esac
for stk in $stacks; do
	case $stk in
	linux | shardstack | tun | tun,*) ;;
	inproc)
		for level in $levels; do
			case $level in
			0 | 10 | 50) ;;
			*) echo "run.sh: inproc: level $level: BenchmarkLoss has 0, 10 and 50 per mille" >&2; exit 2 ;;
			esac
		done
		[ "$family" = 4 ] || { echo "run.sh: inproc: BenchmarkLoss is IPv4 only" >&2; exit 2; }
		;;
	*) echo "run.sh: STACKS: $stk: want linux, shardstack, inproc or tun[,OPTIONS]" >&2; exit 2 ;;
	esac
done
hostport() { if [ "$family" = 6 ]; then echo "[$1]:$2"; else echo "$1:$2"; fi; }
nodad=() # a kernel address is usable at once: no duplicate address detection
[ "$family" = 6 ] && nodad=(nodad)

tmp=$(mktemp -d)
tag=ssl$$
cns=$tag-c sns=$tag-s wns=$tag-w # sender (client), receiver (server) and wire namespaces
cdev=fc0 sdev=fs0 wdev=ws0         # the sender's and receiver's ends; the wire's port to the receiver
ctun=tc0 stun=ts0                  # the sender's and receiver's TUN devices (the tun stacks)
cleanup() {
	# Killing the processes releases the TUN devices; deleting a namespace deletes its
	# veth ends, TUN devices and bridge with it.
	for ns in "$sns" "$cns" "$wns"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
	done
	for ns in "$sns" "$cns" "$wns"; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$tmp/flows" ./bench/cmd/flows
case " $stacks " in *" inproc "*) go test -c -o "$tmp/bench.test" ./bench ;; esac
for ns in "$cns" "$sns" "$wns"; do
	ip netns add "$ns"
	if [ "$family" = 4 ]; then ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; fi
	ip -n "$ns" link set lo up
done
ip link add "$cdev" netns "$cns" type veth peer name wc0 netns "$wns"
ip link add "$sdev" netns "$sns" type veth peer name "$wdev" netns "$wns"
ip -n "$wns" link add br0 type bridge
for end in "$cns $cdev" "$sns $sdev" "$wns wc0" "$wns $wdev"; do
	# shellcheck disable=SC2086 # split into the namespace and the device
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
# segments are dropped, and SYNs, pure ACKs and FINs always pass. Over IPv6 the payload
# length (ip6 length) leaves the 40-byte header out, and a packet whose first next header
# is TCP (ip6 nexthdr tcp: no extension headers, which neither stack sends) carries data
# exactly when its payload length exceeds tcp doff x 4.
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
				if [ "$family" = 4 ]; then
					echo "add rule netdev flows egress_$wdev ip protocol tcp ip hdrlength 5 tcp doff $doff ip length > $((20 + 4 * doff)) numgen random mod 1000 < $1 counter drop"
				else
					echo "add rule netdev flows egress_$wdev ip6 nexthdr tcp tcp doff $doff ip6 length > $((4 * doff)) numgen random mod 1000 < $1 counter drop"
				fi
			done
		fi
	} | ip netns exec "$wns" nft -f -
}
dropped() {
	ip netns exec "$wns" nft list chain netdev flows "egress_$wdev" | awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'
}

# tun_routes add|del: each end's kernel forwards between its stack's TUN device and its
# veth, with its own address on each: on the TUN device point to point, the stack's
# address its peer; and a route to the far stack's address through the far kernel's veth.
# The devices are made (persistent, multi-queue) before the stacks attach to them, so that
# the routes are in place when the sender dials; forwarding is on only for these cells
# (on an AF_PACKET cell a forwarding kernel would route the stacks' packets as well).
tun_routes() {
	if [ "$1" = add ]; then
		ip -n "$sns" tuntap add dev "$stun" mode tun multi_queue
		ip -n "$cns" tuntap add dev "$ctun" mode tun multi_queue
		ip -n "$sns" link set "$stun" up
		ip -n "$cns" link set "$ctun" up
		ip -n "$sns" addr add "$fsrv/$plen" dev "$sdev" "${nodad[@]}"
		ip -n "$cns" addr add "$fcli/$plen" dev "$cdev" "${nodad[@]}"
		ip -n "$sns" addr add "$tsrv" peer "$srv/$hostlen" dev "$stun" "${nodad[@]}"
		ip -n "$cns" addr add "$tcli" peer "$cli/$hostlen" dev "$ctun" "${nodad[@]}"
		ip -n "$sns" route add "$cli/$hostlen" via "$fcli" dev "$sdev"
		ip -n "$cns" route add "$srv/$hostlen" via "$fsrv" dev "$cdev"
		ip netns exec "$sns" sysctl -qw "$forward=1"
		ip netns exec "$cns" sysctl -qw "$forward=1"
	else
		ip netns exec "$sns" sysctl -qw "$forward=0"
		ip netns exec "$cns" sysctl -qw "$forward=0"
		ip -n "$sns" link del "$stun" # its address and the peer route go with it
		ip -n "$cns" link del "$ctun"
		ip -n "$sns" route del "$cli/$hostlen" via "$fcli" dev "$sdev"
		ip -n "$cns" route del "$srv/$hostlen" via "$fsrv" dev "$cdev"
		ip -n "$sns" addr del "$fsrv/$plen" dev "$sdev"
		ip -n "$cns" addr del "$fcli/$plen" dev "$cdev"
	fi
}

# inproc LEVEL: BenchmarkLoss's case for the level, $runs runs after its own warm-up, its
# JSON (with the hook's drops) where a cell's goes.
inproc() {
	local out=$tmp/inproc-$1
	"$tmp/bench.test" -test.run '^$' -test.bench "^BenchmarkLoss\$/^loss=$(($1 / 10))%\$" -test.benchtime "${runs}x" \
		-loss.json "$out.json" -loss.deadline "$deadline" -loss.flows "$nflows" -loss.bytes "$nbytes" >"$out.send" 2>&1 || true
	: >"$out.serve"
	echo 0 >"$out.drops" # the JSON's own count replaces it
	if [ -n "$logdir" ]; then
		mkdir -p "$logdir"
		cp "$out.send" "$logdir/inproc-$1.send"
	fi
	[ -s "$out.json" ] || { echo "run.sh: inproc at $1 per mille printed nothing:" >&2; cat "$out.send" >&2; }
}

# cell STACK LEVEL: one receiver, one sender doing $runs runs, the drops they met.
cell() {
	local stk=$1 level=$2 sargs cargs out=$tmp/$1-$2 caps=() p
	if [ "$stk" = inproc ]; then
		inproc "$level"
		return
	fi
	case $stk in
	linux)
		ip -n "$sns" addr add "$srv/$plen" dev "$sdev" "${nodad[@]}"
		ip -n "$cns" addr add "$cli/$plen" dev "$cdev" "${nodad[@]}"
		sargs=(--link kernel)
		cargs=(--link kernel)
		;;
	shardstack) # no kernel address on either end: the stacks own them
		sargs=(--link "afpacket:$sdev${LINKOPTS:-}" --addr "$srv/$plen" ${FLOWOPTS:-})
		cargs=(--link "afpacket:$cdev${LINKOPTS:-}" --addr "$cli/$plen" ${FLOWOPTS:-})
		;;
	tun*)
		tun_routes add
		sargs=(--link "tun:$stun${stk#tun}" --addr "$srv/$plen" ${FLOWOPTS:-})
		cargs=(--link "tun:$ctun${stk#tun}" --addr "$cli/$plen" ${FLOWOPTS:-})
		;;
	esac
	set_drop "$level"
	if [ -n "$pcapdir" ]; then
		mkdir -p "$pcapdir"
		for dev in wc0 "$wdev"; do
			ip netns exec "$wns" tcpdump -i "$dev" -s 128 -B 16384 --immediate-mode -U -w "$pcapdir/$stk-$level-$dev.pcap" 2>"$pcapdir/$stk-$level-$dev.log" &
			caps+=($!)
		done
		for dev in wc0 "$wdev"; do
			for _ in $(seq 50); do grep -qs listening "$pcapdir/$stk-$level-$dev.log" && break; sleep 0.1; done
		done
	fi
	ip netns exec "$sns" "$tmp/flows" serve "${sargs[@]}" --listen "$(hostport "$srv" 9000)" 2>"$out.serve" &
	local spid=$!
	for _ in $(seq 100); do grep -qs serving "$out.serve" && break; sleep 0.1; done
	grep -q serving "$out.serve" || { cat "$out.serve" >&2; exit 1; }
	# In the background, so that a signal's trap runs at once rather than after the runs.
	ip netns exec "$cns" "$tmp/flows" send "${cargs[@]}" --target "$(hostport "$srv" 9000)" --flows "$nflows" --bytes "$nbytes" \
		--runs "$runs" --deadline "$deadline" --label "$stk/$level" --json >"$out.json" 2>"$out.send" &
	wait $! || true
	dropped >"$out.drops"
	kill -INT "$spid"
	wait "$spid" || true
	if [ -n "$pcapdir" ]; then # tcpdump lags behind: let it write out what it holds (up to 10 s)
		local size=-1
		for _ in $(seq 20); do
			local now
			now=$(cat "$pcapdir/$stk-$level"-*.pcap | wc -c)
			[ "$now" = "$size" ] && break
			size=$now
			sleep 0.5
		done
	fi
	for p in "${caps[@]}"; do
		kill -INT "$p"
		wait "$p" || true
	done
	case $stk in
	linux)
		ip -n "$sns" addr del "$srv/$plen" dev "$sdev"
		ip -n "$cns" addr del "$cli/$plen" dev "$cdev"
		;;
	tun*) tun_routes del ;;
	esac
	if [ -n "$logdir" ]; then
		mkdir -p "$logdir"
		cp "$out.serve" "$logdir/$stk-$level.serve"
		cp "$out.send" "$logdir/$stk-$level.send"
	fi
	[ -s "$out.json" ] || { echo "run.sh: $stk at $level per mille printed nothing:" >&2; cat "$out.send" >&2; }
}

ipv6=
[ "$family" = 6 ] && ipv6=", IPv6"
echo "$(date -u +%F) $(nproc) CPUs, $(uname -r); $nflows flows x $nbytes bytes, $runs runs per cell, deadline $deadline$ipv6"
for level in $levels; do
	for stk in $stacks; do
		cell "$stk" "$level"
	done
done

# shellcheck disable=SC2086 # one argument per level
python3 - "$tmp" "$runs" "$stacks" $levels <<'PY'
import json, os, re, sys
tmp, runs, stacks, levels = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
def load(stk, lv):
    p = f"{tmp}/{stk}-{lv}"
    try:
        r = json.load(open(p + ".json"))
    except (OSError, ValueError):
        return None
    if "drops" not in r: # inproc's JSON counts its own
        r["drops"] = int(open(p + ".drops").read().strip() or 0)
    # What shardstack's links lost beyond the wire's rule: frames the kernel could not
    # queue for a slow reader (a TUN device's queue, an AF_PACKET socket's buffer).
    r["linkdrops"] = [sum(int(m) for m in re.findall(r"(\d+) kernel drops", open(p + e).read())) for e in (".send", ".serve")]
    return r
def label(stk): # a column's name: Linux, shardstack (over AF_PACKET), TUN[,options]
    return {"linux": "Linux", "shardstack": "shardstack", "inproc": "in-process"}.get(stk) or "TUN" + stk[3:]
cells = {(s, lv): load(s, lv) for s in stacks for lv in levels}
cols = [(s, max(9, len(label(s) + " ms"))) for s in stacks]
print(f"\n{'data loss':>9} | " + " | ".join(f"{label(s) + ' ms':>{w}} {'x 0%':>6} {'retrans':>8} {'drops':>6}" for s, w in cols))
print("-" * 9 + "-+-" + "-+-".join("-" * (w + 23) for _, w in cols))
for lv in levels:
    row = f"{int(lv)/10:>8.1f}% |"
    for s, w in cols:
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
        print(f"* {label(s)} at {int(lv)/10:.1f}%: {r['failed_runs']} of {len(r['runs_ms'])} runs failed (counted at the deadline): {r['first_error']}")
    if r:
        kd = r["linkdrops"]
        kds = f"; dropped by the kernel at its links, beyond the wire: sender {kd[0]}, receiver {kd[1]}" if any(kd) else ""
        print(f"  {label(s)} at {int(lv)/10:.1f}%: runs {', '.join(f'{m:.1f}' for m in r['runs_ms'])} ms{kds}")
PY
