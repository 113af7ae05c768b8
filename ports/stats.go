package ports

import "time"

// ClientStats are a client-facing server's counters (the RESP server's),
// as an exporter reads them: plain values, copied, so the reader holds no
// lock of the server. Counters grow from the server's start (Redis's
// CONFIG RESETSTAT zeroes them).
type ClientStats struct {
	// Connections is the number of open client connections;
	// ConnectionsTotal counts every connection accepted.
	Connections, ConnectionsTotal int64
	// LatencyBounds are the upper bounds, in seconds, of the buckets of
	// every command's latency histogram, ascending.
	LatencyBounds []float64
	// Commands holds one entry per command called at least once, in name
	// order; commands outside the server's table share one entry, named
	// OtherCommand, so the set of names stays bounded.
	Commands []CommandStats
	// Errors counts the error replies of key-value requests by kind: the
	// first word of the error text ("MOVED", "CLUSTERDOWN", "TIMEOUT",
	// "MISCONF", ...), from a bounded list, with OtherError for the rest.
	Errors map[string]uint64
	// Reads and Writes count the key-value requests (Request) by outcome.
	// A write is a proposal, on this node or relayed to the leader.
	Reads, Writes Outcomes
}

// OtherCommand and OtherError name the entries that stand for every
// command, or error kind, outside a server's bounded list.
const (
	OtherCommand = "other"
	OtherError   = "other"
)

// Outcomes counts requests by outcome: OK answered with a value, Failed
// answered with an error.
type Outcomes struct{ OK, Failed uint64 }

// CommandStats are one command's counters.
type CommandStats struct {
	Name  string
	Calls uint64
	// Buckets[i] counts the answered calls whose latency was at most
	// LatencyBounds[i] and above the bound before it (not cumulative);
	// the last element, one past the bounds, counts the slower ones. A call
	// is counted in Calls when it arrives and in Buckets when answered.
	Buckets []uint64
	// Sum is the total latency of the calls counted in Buckets.
	Sum time.Duration
}
