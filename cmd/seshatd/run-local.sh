#!/bin/sh
# Runs a local 3-node Seshat cluster in the foreground: client ports 7379,
# 7380, 7381, peer ports 7479..7481, data under ./data/N (kept between
# runs). Ctrl-C (or SIGTERM) stops all three cleanly.
#
#   cmd/seshatd/run-local.sh [path/to/seshatd]     (default bin/seshatd)
set -u
BIN=${1:-bin/seshatd}
DATA=${SESHAT_RUN_DATA:-data}
CLUSTER=1=127.0.0.1:7479,2=127.0.0.1:7480,3=127.0.0.1:7481
CLIENTS=1=127.0.0.1:7379,2=127.0.0.1:7380,3=127.0.0.1:7381

if [ ! -x "$BIN" ]; then
	echo "run-local.sh: $BIN not found; build it first (make run does)" >&2
	exit 2
fi
# A cluster is created once. On the first start (no node's data dir holds
# a cluster identity yet) every node gets --bootstrap and one new cluster
# UUID; later starts pass neither, so a node whose data dir was deleted
# refuses to start instead of coming back empty (README, "Operating a
# cluster", says how to replace it).
BOOT=""
if [ ! -e "$DATA/1/seshat-identity" ] && [ ! -e "$DATA/2/seshat-identity" ] && [ ! -e "$DATA/3/seshat-identity" ]; then
	UUID=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen | tr 'A-F' 'a-f')
	BOOT="--bootstrap --cluster-uuid $UUID"
	echo "seshat: creating a new cluster, UUID $UUID" >&2
fi
PIDS=""
# Job control puts each node in its own process group, so the terminal's
# Ctrl-C reaches only this script, which then stops the nodes one by one.
set -m
stop() {
	trap '' INT TERM
	# One at a time: each leader hands over before it exits.
	for pid in $PIDS; do
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	exit 0
}
trap stop INT TERM
for i in 1 2 3; do
	mkdir -p "$DATA/$i"
	"$BIN" --id "$i" --data-dir "$DATA/$i" \
		--listen "127.0.0.1:$((7378 + i))" --peer-listen "127.0.0.1:$((7478 + i))" \
		--cluster "$CLUSTER" --clients "$CLIENTS" --cluster-id local $BOOT &
	PIDS="$PIDS $!"
done
echo "seshat: 3 nodes on 127.0.0.1:7379, :7380, :7381 (data in $DATA/); Ctrl-C stops them" >&2
# wait returns early when a signal arrives; loop until every node is gone.
while :; do
	alive=""
	for pid in $PIDS; do
		kill -0 "$pid" 2>/dev/null && alive=1
	done
	[ -z "$alive" ] && break
	wait
done
