// Package relay is the adapter of the ports.Relay outbound port: the
// client side of relaying, through which a follower hands batches with
// writes to the leader's client (RESP) address.
//
// A Client keeps one long-lived connection to the leader, or a few
// (Options.Conns), and spreads batches over them; each is pipelined: callers
// write their batches in turn, the last of those waiting flushing them all
// in one write, while a reader goroutine takes the replies, which come
// back in the order sent, and hands each to its caller. So a follower's
// clients share a handful of connections and do not wait for one
// another's round trips. (The leader's RESP server runs the relayed
// batches pipelined on one connection together, as one batch.)
//
// A connection says AUTH (if a password is set) and SESHAT.RELAYED first,
// then carries each batch as one SESHAT.DO command whose argument is
// ports.EncodeRequests of the batch and whose bulk reply is
// ports.EncodeReplies of the replies (adapters/resp serves it). When the
// leader changes, connections to the old one take no new batches and close
// once their replies are in. A connection that breaks, or whose leader
// does not answer a batch before its deadline, fails the batches it sent
// with an unknown outcome (domain.ErrLeadershipLost); the next batch dials
// again.
//
// Command (command.go) sends one admin command (SESHAT.MEMBER) to a node
// on a connection of its own, marked relayed; SendCommand does the same
// for seshatd --join.
package relay
