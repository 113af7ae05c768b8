package resp

import (
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/seshat-kv/seshat/ports"
)

// latencyBounds are the upper bounds, in seconds, of the buckets of every
// command's latency histogram (Stats): from a pipelined local read (tens
// of microseconds) to a write waiting out an election (seconds).
var latencyBounds = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// errorKinds are the error kinds Stats counts: the first word of a
// ports.KV reply's error text. Any other first word counts as
// ports.OtherError, so the set stays bounded whatever a command answers.
var errorKinds = []string{
	"MOVED", "CLUSTERDOWN", "TIMEOUT", "MISCONF", "TRYAGAIN",
	"ERR", "WRONGTYPE", "EXECABORT", "NOAUTH", ports.OtherError,
}

// latencyHist is a fixed-bucket histogram updated with atomics only, so
// recording never takes a lock on the command path.
type latencyHist struct {
	buckets []atomic.Uint64 // len(latencyBounds)+1
	sumNs   atomic.Int64
}

func newLatencyHist() *latencyHist {
	return &latencyHist{buckets: make([]atomic.Uint64, len(latencyBounds)+1)}
}

func (h *latencyHist) observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(latencyBounds) && sec > latencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sumNs.Add(int64(d))
}

func (h *latencyHist) reset() {
	for i := range h.buckets {
		h.buckets[i].Store(0)
	}
	h.sumNs.Store(0)
}

// serverStats are the counters that INFO does not already keep in Server.
type serverStats struct {
	other  *cmdStat        // commands outside the table
	errors []atomic.Uint64 // by index in errorKinds
	reads  [2]atomic.Uint64
	writes [2]atomic.Uint64
}

func (st *serverStats) init() {
	st.other = &cmdStat{name: ports.OtherCommand, lat: newLatencyHist()}
	st.errors = make([]atomic.Uint64, len(errorKinds))
}

func (st *serverStats) reset() {
	st.other.calls.Store(0)
	st.other.lat.reset()
	for i := range st.errors {
		st.errors[i].Store(0)
	}
	for i := range st.reads {
		st.reads[i].Store(0)
		st.writes[i].Store(0)
	}
}

// errorKind returns the index in errorKinds of an error text's kind.
func errorKind(text string) int {
	word, _, _ := strings.Cut(text, " ")
	for i, k := range errorKinds[:len(errorKinds)-1] {
		if word == k {
			return i
		}
	}
	return len(errorKinds) - 1
}

// observe records one command's latency; stat nil is a command outside
// the table.
func (s *Server) observe(stat *cmdStat, d time.Duration) {
	if stat == nil {
		stat = s.stats.other
	}
	stat.lat.observe(d)
}

// countReply records the outcome of one key-value request.
func (s *Server) countReply(req ports.Request, r ports.Reply) {
	failed := 0
	text := ""
	switch {
	case r.Err != nil:
		text = ErrorText(r.Err)
	case r.Value.IsError():
		text = r.Value.Str
	}
	if text != "" {
		failed = 1
		s.stats.errors[errorKind(text)].Add(1)
	}
	if req.IsWrite() {
		s.stats.writes[failed].Add(1)
	} else {
		s.stats.reads[failed].Add(1)
	}
}

// countUnknown records a command outside the table.
func (s *Server) countUnknown() { s.stats.other.calls.Add(1) }

// Stats returns a copy of the server's counters.
func (s *Server) Stats() ports.ClientStats {
	out := ports.ClientStats{
		LatencyBounds:    slices.Clone(latencyBounds),
		Connections:      s.clients.Load(),
		ConnectionsTotal: s.totalConns.Load(),
		Errors:           map[string]uint64{},
		Reads:            ports.Outcomes{OK: s.stats.reads[0].Load(), Failed: s.stats.reads[1].Load()},
		Writes:           ports.Outcomes{OK: s.stats.writes[0].Load(), Failed: s.stats.writes[1].Load()},
	}
	for i, k := range errorKinds {
		if n := s.stats.errors[i].Load(); n > 0 {
			out.Errors[k] = n
		}
	}
	for _, name := range commandNames() {
		if c := s.cmdStats[name]; c.calls.Load() > 0 {
			out.Commands = append(out.Commands, c.copy())
		}
	}
	if s.stats.other.calls.Load() > 0 {
		out.Commands = append(out.Commands, s.stats.other.copy())
	}
	return out
}

func (c *cmdStat) copy() ports.CommandStats {
	cs := ports.CommandStats{Name: c.name, Calls: uint64(c.calls.Load()), Buckets: make([]uint64, len(c.lat.buckets)),
		Sum: time.Duration(c.lat.sumNs.Load())}
	for i := range c.lat.buckets {
		cs.Buckets[i] = c.lat.buckets[i].Load()
	}
	return cs
}
