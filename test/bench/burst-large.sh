#!/bin/bash
# burst-large.sh BIN N SIZE: N SETs of SIZE random bytes, back to back
# through one redis-cli on the leader of a 3-node loopback cluster of BIN
# (a seshatd binary), over 8 keys, while another client SETs a small key
# every 10 ms. Prints the burst's time, the small SETs' latencies, and per
# node the data directory's size right after the burst and 20 s later,
# RSS, and counts of Pebble write-stall and leadership log lines.
#
#	CGO_ENABLED=0 go build -o /tmp/seshatd ./cmd/seshatd
#	test/bench/burst-large.sh /tmp/seshatd 60 8000000
set -u
BIN=$1
N=$2
SIZE=$3
BASE=${BASE:-29378}
D=$(mktemp -d)
. "$(dirname "$0")/cluster.sh"
start_cluster "$BIN" "$D" burst warn no
trap 'rm -f "$D.run"; stop_cluster "$D"' EXIT
if ! find_leader; then
	echo "burst-large.sh: no leader within 30 s" >&2
	exit 1
fi
PORT=$((BASE + LI))
VAL=$D/value
head -c "$SIZE" /dev/urandom >"$VAL"
touch "$D.run"
(
	i=0
	while [ -f "$D.run" ]; do
		s=$(date +%s%N)
		redis-cli -p $PORT set small$i v >/dev/null
		echo $((($(date +%s%N) - s) / 1000000))
		i=$((i + 1))
		sleep 0.01
	done
) >"$D/small.txt" &
SMALL=$!
S=$(date +%s%N)
for i in $(seq 1 "$N"); do
	redis-cli -p $PORT -x set big$((i % 8)) <"$VAL" >/dev/null || echo "SET $i failed"
done
E=$(date +%s%N)
rm -f "$D.run"
wait $SMALL
echo "$N SETs of $SIZE bytes: $(((E - S) / 1000000)) ms, $((N * SIZE / ((E - S) / 1000))) MB/s"
sort -n "$D/small.txt" | awk '{a[NR] = $1} END {print "small SETs:", NR, "p50", a[int(NR / 2) + 1], "ms, p99", a[int(NR * 0.99) + 1], "ms, max", a[NR], "ms"}'
for i in 1 2 3; do echo "node $i: data $(du -sm "$D/$i" | cut -f1) MiB right after"; done
sleep 20
for i in 1 2 3; do
	echo "node $i: data $(du -sm "$D/$i" | cut -f1) MiB 20 s later; RSS $(ps -o rss= -p "${PIDS[$((i - 1))]}") KiB;" \
		"$(grep -c 'write stall' "$D/$i.log") write-stall lines, $(grep -ci 'became leader\|lost leadership' "$D/$i.log") leadership lines"
done
