// Package chaos runs Seshat's container image under real faults and
// checks what clients saw (make chaos).
//
// A run starts a 5-node and a 3-node cluster of the image (seshat:chaos,
// built by cmd/seshatd/image.sh) on a Docker network of its own, with
// fixed addresses, each node's client port published on 127.0.0.1 in
// 25000-25999. From the host, a nemesis cuts links with iptables inside
// the containers' network namespaces (nsenter -t PID -n): one node, the
// leader, a minority from a majority, a ring, a bridge; slows and drops
// packets (tc netem where the kernel has it, else tbf and iptables'
// statistic match); kills nodes with SIGKILL (one, a minority, the
// leader, all) and starts them again; pauses the leader for 2-5 election
// timeouts; changes the membership with SESHAT.MEMBER while another of
// those faults is active (remove a member and join a new one, replace a
// killed member, grow 3 -> 5, shrink 5 -> 3: membership.go); fills a
// node's data dir, a size-limited tmpfs the host mounts for each node,
// until seshatd refuses writes. Every fault is healed after a bounded
// time, and the cluster must take a write within 30 s of each heal.
//
// Meanwhile three workloads run, their clients never retrying: a
// register per key (GET, SET, SET NX, SET XX, DEL) checked for
// linearizability with porcupine, writes of unknown outcome kept as
// such; INCR counters, whose final value must lie within [acknowledged,
// acknowledged + unknown]; lists fed by RPUSH of unique elements, of
// which every acknowledged one must be there once and none that was
// refused. Clients follow the member set, and a write that fails on a
// node being removed has an unknown outcome. At the end every member must
// list the same voters and report the same applied index and
// SESHAT.DIGEST.
//
// Each run prints one line per nemesis step and per workload; a failure
// keeps the nodes' logs, the schedule and porcupine's visualisation in a
// directory it names. SESHAT_CHAOS=1 enables the test (make test skips
// it); SESHAT_CHAOS_SEED replays a schedule, SESHAT_CHAOS_DURATION
// lengthens it, SESHAT_CHAOS_CLUSTERS picks the cluster sizes.
package chaos
