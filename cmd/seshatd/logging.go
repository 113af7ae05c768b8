package main

import (
	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/domain"
)

// Log fields. Every line a node logs carries "node" (its id) and
// "component" (seshatd, pebble, tcp, raft, app, relay, resp, tls) exactly once;
// lines about another node name it "peer", and Raft positions are "term"
// and "index". README lists them for log pipelines.
//
// Some packages add one of the two fields themselves, to their Config's
// logger; componentLog adds only what the package does not, so that a JSON
// line never holds a key twice.
var (
	addsNode      = map[string]bool{"tcp": true, "raft": true}
	addsComponent = map[string]bool{"tcp": true, "app": true, "resp": true, "relay": true, "metrics": true}
)

// componentLog returns the logger to give component, derived from base
// (which holds neither field).
func componentLog(base zerolog.Logger, id domain.NodeID, component string) zerolog.Logger {
	c := base.With()
	if !addsNode[component] {
		c = c.Uint64("node", uint64(id))
	}
	if !addsComponent[component] {
		c = c.Str("component", component)
	}
	return c.Logger()
}
