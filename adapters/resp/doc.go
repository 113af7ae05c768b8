// Package resp is Seshat's Redis protocol front door: a
// github.com/tidwall/redcon server that turns RESP2 commands into
// ports.KV requests and their replies back into RESP, with Redis's error
// texts.
//
// Every command a client pipelined (what redcon has read from the
// connection at once) is handled as one batch: the key-value commands of
// the batch go to ports.KV.Do together, so they are proposed together, and
// every reply is written in the order the commands came. Connection
// commands (PING, ECHO, HELLO, CLIENT, COMMAND, CONFIG GET, SELECT, INFO,
// QUIT) are answered by the adapter itself.
//
// SET's options NX, XX, GET, EX, PX, EXAT and PXAT are parsed and checked
// as Redis does, then refused with "ERR ... not yet supported": the state
// machine has neither expiry nor a conditional write yet, and a
// read-then-write would race. RESP3 (HELLO 3) is refused with NOPROTO.
package resp
