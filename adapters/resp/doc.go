// Package resp is Seshat's Redis protocol front door: a
// github.com/tidwall/redcon server that turns RESP commands into ports.KV
// requests and their replies back into RESP2 or RESP3 (after HELLO 3),
// with Redis's error texts.
//
// Every command a client pipelined (what redcon has read from the
// connection at once) is handled as one batch: the key-value commands of
// the batch go to ports.KV.Do together, so they are proposed together, and
// every reply is written in the order the commands came. Connection and
// server commands (PING, ECHO, HELLO, AUTH, RESET, TIME, CLIENT, COMMAND,
// CONFIG, SELECT, INFO, QUIT, and in redirect mode CLUSTER, READONLY and
// READWRITE) are answered by the adapter itself, reply for reply as Redis
// 7 does.
//
// With Options.RequirePass set, a connection must AUTH (or HELLO AUTH)
// before anything but AUTH, HELLO, QUIT and RESET; the relay commands a
// relaying node sends need it too. With Options.Redirect, CLUSTER SLOTS,
// SHARDS and NODES describe the Raft leader as the one master holding all
// 16384 slots, so cluster-aware clients follow the MOVED replies of
// followers.
package resp
