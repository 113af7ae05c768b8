#!/bin/bash
# cpu-per-set.sh BIN [ROUNDS]: SET throughput and CPU per SET, summed over
# every node, for a cluster of BIN (a seshatd binary) on loopback, or for a
# plain server with SERVER=redis or SERVER=floor (test/bench/floor, a bare
# redcon server that keeps SETs in a map: what a Go RESP front door costs
# with no Raft and no disk). Each round runs redis-benchmark -t set -d 100
# -r 100000 at -c 50, at -c 50 -P 16 and at -c 1, after 300,000 pipelined
# SETs fill the key space; CPU is read from /proc/PID/stat around each run.
#
# NODES (default 3) and SESHATD_ARGS (e.g. --no-sync) go to cluster.sh.
# Issue 9's bounds in BENCHMARKS.md were measured with it:
#
#	CGO_ENABLED=0 go build -o /tmp/seshatd ./cmd/seshatd
#	test/bench/cpu-per-set.sh /tmp/seshatd
#	NODES=1 test/bench/cpu-per-set.sh /tmp/seshatd
#	SESHATD_ARGS=--no-sync test/bench/cpu-per-set.sh /tmp/seshatd
#	go build -o /tmp/floor ./test/bench/floor && SERVER=floor test/bench/cpu-per-set.sh /tmp/floor
#	SERVER=redis test/bench/cpu-per-set.sh redis-server
set -u
BIN=$1
ROUNDS=${2:-3}
BASE=${BASE:-27378}
SERVER=${SERVER:-seshat}
D=$(mktemp -d /tmp/seshat-bench-XXXX)
. "$(dirname "$0")/cluster.sh"
PORT=$((BASE + 1))
case $SERVER in
seshat)
	start_cluster "$BIN" "$D" cpu warn no
	trap 'stop_cluster "$D"' EXIT
	find_leader || { echo "cpu-per-set.sh: no leader within 30 s" >&2; exit 1; }
	PORT=$((BASE + LI))
	;;
floor)
	"$BIN" -listen 127.0.0.1:$PORT &
	PIDS=($!)
	trap 'kill ${PIDS[0]}; wait; rm -rf "$D"' EXIT
	;;
redis)
	"$BIN" --port $PORT --bind 127.0.0.1 --dir "$D" --save '' --appendonly yes --appendfsync always >"$D/redis.log" 2>&1 &
	PIDS=($!)
	trap 'kill ${PIDS[0]}; wait; rm -rf "$D"' EXIT
	;;
esac
up=no
for _ in $(seq 1 50); do
	redis-cli -p $PORT ping 2>/dev/null | grep -q PONG && { up=yes; break; }
	sleep 0.2
done
[ $up = yes ] || { echo "cpu-per-set.sh: nothing answers PING on port $PORT" >&2; exit 1; }
cpu() { for p in "${PIDS[@]}"; do awk '{print $14 + $15}' /proc/$p/stat; done | paste -sd+ | bc; }
timeout 150 redis-benchmark -p $PORT -t set -n 300000 -r 100000 -d 100 -c 50 -P 16 -q >/dev/null 2>&1
for r in $(seq 1 "$ROUNDS"); do
	for c in "50" "50 -P 16" "1"; do
		n=100000
		[ "$c" = "50 -P 16" ] && n=400000
		[ "$c" = 1 ] && n=5000
		c0=$(cpu)
		rps=$(timeout 120 redis-benchmark -p $PORT -t set -n $n -r 100000 -d 100 -c $c -q 2>/dev/null | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1)
		c1=$(cpu)
		echo "round $r: SET -c $c: ${rps:-failed}; CPU $(echo "($c1 - $c0) * 10000 / $n" | bc -l | cut -c1-6) us per SET over ${#PIDS[@]} process(es)"
	done
done
