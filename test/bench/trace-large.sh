#!/bin/bash
# trace-large.sh BIN OUT: Go runtime traces of a 3-node cluster over one
# large SET, to find what holds up the Raft loop (issue 14).
#
# Starts a 3-node cluster of BIN (a seshatd binary) on loopback ports
# BASE+1..3 (clients), BASE+101..103 (peers) and BASE+201..203
# (SESHAT_PPROF_LISTEN), BASE 21700 by default; SETs and GETs 10 MiB,
# 100 MiB and 256 MiB values on the leader while one client SETs small
# keys every 5 ms, then traces every node for TRACE_SECONDS (default 16)
# over a SET and a GET of SIZE MiB (default 512), writing OUT.N.trace
# (node N) and printing the elections seen. Read a trace with
# `go tool trace OUT.N.trace`, or `go tool trace -d=parsed` for text.
#
#	CGO_ENABLED=0 go build -o /tmp/seshatd ./cmd/seshatd
#	SIZE=256 test/bench/trace-large.sh /tmp/seshatd /tmp/large
set -u
BIN=$1
OUT=$2
BASE=${BASE:-21700}
SIZE=${SIZE:-512}
D=$(mktemp -d)
SP=""
. "$(dirname "$0")/cluster.sh"
start_cluster "$BIN" "$D" trace info yes
stop() {
	[ -n "$SP" ] && kill "$SP" 2>/dev/null
	stop_cluster "$D"
}
trap stop EXIT
find_leader || { echo "trace-large.sh: no leader within 30 s" >&2; exit 1; }
P=$((BASE + LI))
echo "leader: node $LI"
(while :; do redis-cli -p $P set small v >/dev/null 2>&1; sleep 0.005; done) &
SP=$!
for mb in 10 100 256; do
	head -c $((mb << 20)) /dev/urandom | timeout 120 redis-cli -p $P -x set warm >/dev/null
	timeout 120 redis-cli -p $P get warm >/dev/null
done
head -c $((SIZE << 20)) /dev/urandom >"$D/value"
TP=()
for i in 1 2 3; do
	curl -s -o "$OUT.$i.trace" "http://127.0.0.1:$((BASE + 200 + i))/debug/pprof/trace?seconds=${TRACE_SECONDS:-16}" &
	TP+=($!)
done
sleep 0.2
echo "SET of $SIZE MiB at $(date +%T.%N)"
timeout 120 redis-cli -p $P -x set big <"$D/value"
echo "GET at $(date +%T.%N)"
timeout 120 redis-cli -p $P get big >/dev/null
echo "done at $(date +%T.%N)"
wait "${TP[@]}"
grep -h 'became\|lost contact' "$D"/*.log | grep -v 'term=0\|last=1 ' | sort -k2
