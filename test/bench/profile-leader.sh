#!/bin/bash
# profile-leader.sh BIN OUT: where a leader's CPU goes under SET load.
#
# Starts a 3-node cluster of BIN (a seshatd binary) on loopback ports
# 27379-27381 (clients) and 27479-27481 (peers) with data in a temporary
# directory, fills the 100,000-key space redis-benchmark -r 100000 uses
# (300,000 pipelined SETs), then records the leader with `perf record -g`
# for 12 s of `redis-benchmark -t set -c 50 -d 100 -r 100000`, stops the
# cluster and writes OUT.top (flat, by symbol) and OUT.cum (with children).
# Needs perf (linux-perf) and the redis-tools; run it as root or with
# kernel.perf_event_paranoid <= 1.
#
#	CGO_ENABLED=0 go build -o /tmp/seshatd ./cmd/seshatd
#	test/bench/profile-leader.sh /tmp/seshatd /tmp/prof
set -u
BIN=$1
OUT=$2
D=$(mktemp -d)
CL=1=127.0.0.1:27479,2=127.0.0.1:27480,3=127.0.0.1:27481
CC=1=127.0.0.1:27379,2=127.0.0.1:27380,3=127.0.0.1:27381
PIDS=()
UUID=$(cat /proc/sys/kernel/random/uuid)
for i in 1 2 3; do
	mkdir -p "$D/$i"
	"$BIN" --id $i --data-dir "$D/$i" --listen 127.0.0.1:$((27378 + i)) --peer-listen 127.0.0.1:$((27478 + i)) \
		--cluster $CL --clients $CC --cluster-id prof --bootstrap --cluster-uuid $UUID --log-level warn >"$D/$i.log" 2>&1 &
	PIDS+=($!)
done
stop() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$D"
}
trap stop EXIT
LP=""
PORT=""
for _ in $(seq 1 60); do
	for i in 1 2 3; do
		if redis-cli -p $((27378 + i)) INFO replication 2>/dev/null | grep -q "role:\(leader\|master\)"; then
			LP=${PIDS[$((i - 1))]}
			PORT=$((27378 + i))
		fi
	done
	[ -n "$LP" ] && break
	sleep 0.5
done
if [ -z "$LP" ]; then
	echo "profile-leader.sh: no leader within 30 s" >&2
	exit 1
fi
echo "leader: pid $LP, port $PORT"
timeout 150 redis-benchmark -p $PORT -t set -n 300000 -r 100000 -d 100 -c 50 -P 16 -q >/dev/null 2>&1
timeout 120 redis-benchmark -p $PORT -t set -n 1000000 -r 100000 -d 100 -c 50 -q >"$OUT.rb" 2>&1 &
RB=$!
sleep 2
timeout 30 perf record -F 499 -g -p "$LP" -o "$OUT.data" -- sleep 12 >/dev/null 2>&1
kill $RB 2>/dev/null
wait $RB 2>/dev/null
perf report -i "$OUT.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -40 >"$OUT.top"
perf report -i "$OUT.data" --children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -120 >"$OUT.cum"
echo "wrote $OUT.top and $OUT.cum"
