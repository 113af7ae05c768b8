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
//
// MULTI queues data commands, which EXEC sends as one transaction request
// (one log entry); PING, ECHO, TIME, INFO and SELECT queue too and are
// answered by the node once EXEC has run, their replies spliced into
// EXEC's. WATCH cuts the batch: it needs the commands before it to have run.
//
// Every connection's byte stream passes a guard (guard.go) before redcon
// buffers it: a bulk string or command past the limits is refused as its
// header arrives, with Redis's protocol error, and the connection closed,
// so a client cannot make the node buffer gigabytes.
package resp
