#!/usr/bin/env bash
# restore-large.sh [SIZE_MB] [RUNS]: time and peak RSS of `seshatd
# restore` of a backup holding one value of SIZE_MB MiB (default 512),
# RUNS times (default 3), as BENCHMARKS.md, "Large values, stop 21",
# reports them.
#
# Starts a one-node cluster on 127.0.0.1:17400 (peer 17401), SETs a
# value of random bytes with redis-cli -x, writes a backup with `seshatd
# backup`, stops the node, then restores the file into a fresh data dir
# under /usr/bin/time, printing the time and the maximum RSS. Everything
# it starts is killed at the end; data goes to a temp dir (removed).
set -euo pipefail
SIZE=${1:-512}
RUNS=${2:-3}
BIN=${SESHATD:-$(mktemp -d)/seshatd}
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/seshatd
DIR=$(mktemp -d /tmp/restore-large.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
"$BIN" --id 1 --data-dir "$DIR/node" --cluster 1=127.0.0.1:17401 --clients 1=127.0.0.1:17400 \
	--listen 127.0.0.1:17400 --bootstrap --log-level warn >"$DIR/node.log" 2>&1 &
PID=$!
for _ in $(seq 50); do redis-cli -p 17400 ping >/dev/null 2>&1 && break; sleep 0.2; done
head -c $((SIZE << 20)) /dev/urandom >"$DIR/value"
redis-cli -p 17400 -x set big <"$DIR/value" >/dev/null
rm "$DIR/value"
echo "value: $(redis-cli -p 17400 strlen big) bytes"
"$BIN" backup --from 127.0.0.1:17400 --out "$DIR/backup" >/dev/null 2>&1
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
for i in $(seq "$RUNS"); do
	rm -rf "$DIR/restored"
	/usr/bin/time -f "restore $i: %e s, max RSS %M KiB" "$BIN" restore --in "$DIR/backup" --data-dir "$DIR/restored" --id 1 2>&1 | tail -n 1
done
