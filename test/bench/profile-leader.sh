#!/bin/bash
# profile-leader.sh BIN OUT: where a leader's CPU goes under SET load.
#
# Starts a 3-node cluster of BIN (a seshatd binary) on loopback ports
# BASE+1..BASE+3 (clients) and BASE+101..BASE+103 (peers), BASE 27378 by
# default, with data in a temporary directory, fills the 100,000-key space
# redis-benchmark -r 100000 uses (300,000 pipelined SETs), then profiles the
# leader for 12 s (perf) or 10 s (pprof) of `redis-benchmark -t set -c 50
# -d 100 -r 100000 $RB_ARGS`, stops the cluster and writes OUT.top (flat)
# and OUT.cum (with children), and OUT.cpu: the three nodes' CPU time over
# the profiled run (from /proc) and the load average.
#
# PROFILER=perf (default): `perf record -g`, kernel included; needs perf
# (linux-perf) and root or kernel.perf_event_paranoid <= 1.
# PROFILER=pprof: Go's CPU profile through SESHAT_PPROF_LISTEN
# (cmd/seshatd/pprof.go) on ports BASE+201..BASE+203; no root; also
# writes OUT.pb.gz for `go tool pprof`.
#
#	CGO_ENABLED=0 go build -o /tmp/seshatd ./cmd/seshatd
#	test/bench/profile-leader.sh /tmp/seshatd /tmp/prof
#	PROFILER=pprof BASE=20100 test/bench/profile-leader.sh /tmp/seshatd /tmp/prof
set -u
BIN=$1
OUT=$2
BASE=${BASE:-27378}
PROFILER=${PROFILER:-perf}
D=$(mktemp -d)
. "$(dirname "$0")/cluster.sh"
PPROF=no
[ "$PROFILER" = pprof ] && PPROF=yes
start_cluster "$BIN" "$D" prof warn $PPROF
trap 'stop_cluster "$D"' EXIT
if ! find_leader; then
	echo "profile-leader.sh: no leader within 30 s" >&2
	exit 1
fi
LP=${PIDS[$((LI - 1))]}
PORT=$((BASE + LI))
echo "leader: pid $LP, port $PORT"
cpu() { for p in "${PIDS[@]}"; do awk '{print $14 + $15}' /proc/$p/stat; done | paste -sd+ | bc; }
timeout 150 redis-benchmark -p $PORT -t set -n 300000 -r 100000 -d 100 -c 50 -P 16 -q >/dev/null 2>&1
C0=$(cpu)
timeout 120 redis-benchmark -p $PORT -t set -n 10000000 -r 100000 -d 100 -c 50 ${RB_ARGS:-} >"$OUT.rb" 2>&1 &
RB=$!
sleep 2
if [ "$PROFILER" = pprof ]; then
	go tool pprof -proto -output "$OUT.pb.gz" "http://127.0.0.1:$((BASE + 200 + LI))/debug/pprof/profile?seconds=10" 2>/dev/null
else
	timeout 30 perf record -F 499 -g -p "$LP" -o "$OUT.data" -- sleep 12 >/dev/null 2>&1
fi
kill -INT $RB 2>/dev/null
wait $RB 2>/dev/null
C1=$(cpu)
echo "three nodes' CPU over the profiled run: $((C1 - C0)) ticks of 1/100 s; load: $(cat /proc/loadavg)" >"$OUT.cpu"
tr '\r' '\n' <"$OUT.rb" | grep -E 'rps=' | tail -1 >>"$OUT.cpu"
if [ "$PROFILER" = pprof ]; then
	go tool pprof -top -nodecount 40 "$OUT.pb.gz" 2>/dev/null >"$OUT.top"
	go tool pprof -top -cum -nodecount 120 "$OUT.pb.gz" 2>/dev/null >"$OUT.cum"
else
	perf report -i "$OUT.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -40 >"$OUT.top"
	perf report -i "$OUT.data" --children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -120 >"$OUT.cum"
fi
echo "wrote $OUT.top, $OUT.cum and $OUT.cpu"
