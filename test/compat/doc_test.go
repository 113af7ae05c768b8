// Package compat is a differential test of Seshat against redis-server: it
// sends the same long, seeded, random sequence of commands (strings,
// hashes, sets, sorted sets, lists, keys, expiry, databases,
// MULTI/EXEC/WATCH, WRONGTYPE mixes, bad arguments, binary and large
// values, over a small pool of colliding keys) to a real redis-server and to
// a 3-node seshatd cluster, one command at a time from a few clients (on
// Seshat each client talks to a different node), and compares every reply,
// parsed by a raw RESP2 client, with go-cmp. TTLs are compared within 2 s
// (2000 ms), KEYS and SCAN as sorted sets, RANDOMKEY only as nil or not;
// the collection commands as differences.txt's notes say (unordered
// replies sorted, HSCAN/SSCAN/ZSCAN iterated to the end, random members
// by count).
// At the end it compares every key of the pool in every database (its
// type, TTL and whole value, collections included), and then waits for
// the three seshatd nodes to report the same state (SESHAT.DIGEST): a
// node-local cache that decided a result could leave replicas apart
// while every reply matched.
//
// Run it (redis-server must be installed, e.g. apt-get install
// redis-server; without it the tests skip):
//
//	go test ./test/compat                                   # both tests, 1500 ops each
//	go test ./test/compat -run '^TestCompatRedisVsRedis$'   # the harness against two redis-servers
//	SESHAT_COMPAT_OPS=20000 go test ./test/compat -run '^TestCompat$'
//	SESHAT_COMPAT_SEED=123 go test ./test/compat -run '^TestCompat$' -v   # replay a seed
//	SESHAT_COMPAT_ADDRS=127.0.0.1:7379,127.0.0.1:7380 go test ./test/compat -run '^TestCompat$'
//
// The seed is printed by every run (go test -v) and in every failure, with
// the exact command that replays it. SESHAT_COMPAT_ADDRS compares with an
// already running server or cluster instead of starting seshatd. TestMain
// builds ./cmd/seshatd; if that fails, TestCompat fails with the build
// output (TestCompatRedisVsRedis still runs).
//
// differences.txt lists the deliberate differences (INFO, Raft-specific
// errors); its header explains the format. While triaging,
// SESHAT_COMPAT_MORE_DIFFERENCES=file adds the entries of another file in
// that format (to look past a known bug without listing it), and
// SESHAT_COMPAT_HISTORY=n shows n commands before a difference (default 25).
package compat
