#!/usr/bin/env bash
# members-catchup.sh N: time for a new learner to catch up from a snapshot
# of a 3-node cluster holding N keys, and its peak RSS.
#
# Starts three seshatd on 127.0.0.1:22001-22003 (peers 22101-22103), loads
# N keys (MSET of 100 keys, 16-byte values, through redis-cli --pipe),
# then starts node 4 with --join and waits until the leader promotes it
# (it is caught up: SESHAT.MEMBER LIST shows it a voter). Prints the time
# from node 4's start to its promotion, node 4's VmHWM and how many
# snapshot image files the nodes' spools still hold (0 expected: they are
# deleted once sent and installed). Everything it
# starts is killed at the end; data goes to a temp dir.
#
# REPLACE=1: the same for a replacement instead of an added node: node 3
# (a follower) is killed and its data dir deleted, then
# `SESHAT.MEMBER REPLACE 3 4 ...` and node 4 started with --join; the time
# runs until node 4 is a voter and its DBSIZE (a READONLY local read)
# counts every key.
set -euo pipefail
N=${1:-1000000}
BIN=${SESHATD:-$(mktemp -d)/seshatd}
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/seshatd
DIR=$(mktemp -d /tmp/members-catchup.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
CL="1=127.0.0.1:22101,2=127.0.0.1:22102,3=127.0.0.1:22103"
CC="1=127.0.0.1:22001,2=127.0.0.1:22002,3=127.0.0.1:22003"
UUID=$(cat /proc/sys/kernel/random/uuid)
for i in 1 2 3; do
  "$BIN" --bootstrap --cluster-uuid "$UUID" --id $i --data-dir "$DIR/$i" --listen 127.0.0.1:2200$i --cluster $CL --clients $CC \
    --snapshot-entries 200 --trailing-entries 20 --log-format json > "$DIR/n$i.log" 2>&1 &
  PIDS+=($!)
done
for _ in $(seq 100); do redis-cli -p 22001 SET probe 1 >/dev/null 2>&1 && break; sleep 0.2; done
LP=""
for _ in $(seq 100); do
  for i in 1 2 3; do redis-cli -p 2200$i INFO replication | grep -q "raft_role:leader" && LP=2200$i; done
  [ -n "$LP" ] && break; sleep 0.2
done
t0=$(date +%s.%N)
# In pipes of 50,000 keys: one pipe of a million keeps the leader too busy
# on a loaded machine.
for ((from = 0; from < N; from += 50000)); do
awk -v from="$from" -v n="$(( from + 50000 < N ? from + 50000 : N ))" 'BEGIN { v = "vvvvvvvvvvvvvvvv"; for (i = from; i < n; i += 100) {
  m = (n - i < 100) ? n - i : 100; printf "*%d\r\n$4\r\nMSET\r\n", 1 + 2 * m
  for (j = i; j < i + m; j++) { k = "key:" j; printf "$%d\r\n%s\r\n$16\r\n%s\r\n", length(k), k, v } } }' |
  redis-cli -p "$LP" --pipe >> "$DIR/load.out" 2>&1 || true
done
t1=$(date +%s.%N)
echo "loaded $N keys in $(echo "$t1 - $t0" | bc) s: $(grep -c "errors: 0" "$DIR/load.out") pipes without errors"
redis-cli -p "$LP" DBSIZE
if [ "${REPLACE:-0}" = 1 ]; then
  VP=22003; [ "$LP" = 22003 ] && VP=22002
  VID=$(( VP - 22000 ))
  kill "${PIDS[$(( VID - 1 ))]}"; wait "${PIDS[$(( VID - 1 ))]}" 2>/dev/null || true
  rm -rf "${DIR:?}/$VID"
  redis-cli -p "$LP" SESHAT.MEMBER REPLACE "$VID" 4 127.0.0.1:22104 127.0.0.1:22004
fi
start=$(date +%s.%N)
"$BIN" --id 4 --data-dir "$DIR/4" --listen 127.0.0.1:22004 --peer-listen 127.0.0.1:22104 \
  --join 127.0.0.1:$LP --snapshot-entries 200 --trailing-entries 20 --log-format json > "$DIR/n4.log" 2>&1 &
P4=$!; PIDS+=($P4)
until redis-cli -p 22001 SESHAT.MEMBER LIST 2>/dev/null | paste - - - - - - | grep -q "^4	voter"; do
  sleep 0.1
  kill -0 $P4 || { echo "node 4 died"; tail "$DIR/n4.log"; exit 1; }
done
end=$(date +%s.%N)
echo "node 4 promoted (caught up) after $(echo "$end - $start" | bc) s"
if [ "${REPLACE:-0}" = 1 ]; then
  want=$(redis-cli -p "$LP" DBSIZE)
  until [ "$(printf 'READONLY\nDBSIZE\n' | redis-cli -p 22004 2>/dev/null | tail -1)" = "$want" ]; do sleep 0.1; done
  end=$(date +%s.%N)
  echo "replacement node 4 serves all $want keys after $(echo "$end - $start" | bc) s"
fi
grep VmHWM /proc/$P4/status
# Snapshot images travel through <data dir>/snapshot-spool on both sides
# and are deleted once sent and installed: none should be left.
echo "snapshot spool files left: $(find "$DIR"/*/snapshot-spool -type f 2>/dev/null | wc -l)"
redis-cli -p 22004 DBSIZE
grep -hi "snapshot" "$DIR/n1.log" "$DIR/n2.log" "$DIR/n3.log" "$DIR/n4.log" | cut -c1-200 | tail -8
uptime
