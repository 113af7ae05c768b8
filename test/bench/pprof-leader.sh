#!/bin/bash
# pprof-leader.sh BIN OUT [BASE]: a Go CPU profile of a leader under SET load.
#
# Like profile-leader.sh, without perf or root: starts a 3-node cluster of
# BIN with SESHAT_PPROF_LISTEN set (cmd/seshatd/pprof.go), clients on
# ports BASE+1..BASE+3, peers on BASE+11..BASE+13, pprof on BASE+21..BASE+23
# (BASE defaults to 20100), fills the 100,000-key space, then takes a 10 s
# CPU profile of the leader during `redis-benchmark -t set -c 50 -d 100
# -r 100000` and writes OUT.pb.gz, OUT.top (flat) and OUT.cum, plus the
# CPU time of each node over the profiled run (OUT.cpu, from /proc).
#
#	CGO_ENABLED=0 go build -o /tmp/seshatd ./cmd/seshatd
#	test/bench/pprof-leader.sh /tmp/seshatd /tmp/prof
# Extra redis-benchmark arguments: RB_ARGS="-P 16" or RB_ARGS="-t get".
set -u
BIN=$1
OUT=$2
BASE=${3:-20100}
D=$(mktemp -d)
CL=1=127.0.0.1:$((BASE + 11)),2=127.0.0.1:$((BASE + 12)),3=127.0.0.1:$((BASE + 13))
CC=1=127.0.0.1:$((BASE + 1)),2=127.0.0.1:$((BASE + 2)),3=127.0.0.1:$((BASE + 3))
PIDS=()
for i in 1 2 3; do
	mkdir -p "$D/$i"
	SESHAT_PPROF_LISTEN=127.0.0.1:$((BASE + 20 + i)) "$BIN" --id $i --data-dir "$D/$i" \
		--listen 127.0.0.1:$((BASE + i)) --peer-listen 127.0.0.1:$((BASE + 10 + i)) \
		--cluster $CL --clients $CC --cluster-id pprof --log-level warn >"$D/$i.log" 2>&1 &
	PIDS+=($!)
done
stop() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$D"
}
trap stop EXIT
LI=""
for _ in $(seq 1 60); do
	for i in 1 2 3; do
		if redis-cli -p $((BASE + i)) INFO replication 2>/dev/null | grep -q "role:\(leader\|master\)"; then
			LI=$i
		fi
	done
	[ -n "$LI" ] && break
	sleep 0.5
done
if [ -z "$LI" ]; then
	echo "pprof-leader.sh: no leader within 30 s" >&2
	exit 1
fi
PORT=$((BASE + LI))
echo "leader: node $LI, port $PORT"
timeout 150 redis-benchmark -p $PORT -t set -n 300000 -r 100000 -d 100 -c 50 -P 16 -q >/dev/null 2>&1
cpu() { for p in "${PIDS[@]}"; do awk '{print $14 + $15}' /proc/$p/stat; done | paste -sd+ | bc; }
C0=$(cpu)
timeout 120 redis-benchmark -p $PORT -t set -n 10000000 -r 100000 -d 100 -c 50 ${RB_ARGS:-} >"$OUT.rb" 2>&1 &
RB=$!
sleep 1
go tool pprof -proto -output "$OUT.pb.gz" "http://127.0.0.1:$((BASE + 20 + LI))/debug/pprof/profile?seconds=10" 2>/dev/null
kill -INT $RB 2>/dev/null
wait $RB 2>/dev/null
C1=$(cpu)
# requests done: the last "SET: rate" line redis-benchmark printed
echo "cluster CPU ticks (1/100 s) during the run: $((C1 - C0)); load: $(cat /proc/loadavg)" >"$OUT.cpu"
tr '\r' '\n' <"$OUT.rb" | grep -E 'rps=|requests per second' | tail -2 >>"$OUT.cpu"
go tool pprof -top -nodecount 40 "$OUT.pb.gz" 2>/dev/null >"$OUT.top"
go tool pprof -top -cum -nodecount 80 "$OUT.pb.gz" 2>/dev/null >"$OUT.cum"
echo "wrote $OUT.pb.gz, $OUT.top, $OUT.cum, $OUT.cpu"
