# cluster.sh: the 3-node loopback cluster the bench scripts start
# (profile-leader.sh, trace-large.sh). Sourced, not run.
#
# start_cluster BIN DIR NAME LEVEL PPROF starts nodes 1-3 of BIN with data
# and logs (N.log) in DIR, client ports BASE+1..3, peer ports
# BASE+101..103, cluster id NAME, log level LEVEL, and, if PPROF is yes,
# SESHAT_PPROF_LISTEN on BASE+201..203; their pids go in PIDS.
# stop_cluster stops them and removes DIR. find_leader sets LI to the
# leader's id, waiting up to 30 s, or fails. NODES (default 3) starts
# only nodes 1..NODES, as a cluster of that size; SESHATD_ARGS are added
# to every node's flags (e.g. --no-sync).

start_cluster() {
	local bin=$1 dir=$2 name=$3 level=$4 pprof=$5 i
	local cl="" cc="" uuid
	for i in $(seq 1 "${NODES:-3}"); do
		cl=$cl${cl:+,}$i=127.0.0.1:$((BASE + 100 + i))
		cc=$cc${cc:+,}$i=127.0.0.1:$((BASE + i))
	done
	uuid=$(cat /proc/sys/kernel/random/uuid)
	PIDS=()
	for i in $(seq 1 "${NODES:-3}"); do
		mkdir -p "$dir/$i"
		if [ "$pprof" = yes ]; then
			export SESHAT_PPROF_LISTEN=127.0.0.1:$((BASE + 200 + i))
		fi
		"$bin" --id $i --data-dir "$dir/$i" --listen 127.0.0.1:$((BASE + i)) --peer-listen 127.0.0.1:$((BASE + 100 + i)) \
			--cluster $cl --clients $cc --cluster-id "$name" --bootstrap --cluster-uuid $uuid --log-level "$level" ${SESHATD_ARGS:-} >"$dir/$i.log" 2>&1 &
		PIDS+=($!)
	done
	unset SESHAT_PPROF_LISTEN
}

stop_cluster() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$1"
}

find_leader() {
	local i
	LI=""
	for _ in $(seq 1 60); do
		for i in $(seq 1 "${NODES:-3}"); do
			if redis-cli -p $((BASE + i)) INFO replication 2>/dev/null | grep -q "role:\(leader\|master\)"; then
				LI=$i
			fi
		done
		[ -n "$LI" ] && return 0
		sleep 0.5
	done
	return 1
}
