package app

import (
	"context"
	"runtime"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// relayBytesPerSecond is the slowest rate a relayed batch's bytes are
// given to travel to the leader, replicate and be written: a batch
// carrying a large value gets RelayTimeout plus a second per this many
// bytes (a slow rate: a loaded machine copies, checksums and writes a
// value several times on its way), so a 512 MB SET through a follower is
// not cut at 10s. The large writes queued ahead of a batch get the same
// rate (see ports.BacklogContext).
const relayBytesPerSecond = 1 << 20

// relayTimeout bounds the relay of reqs: base, plus time for their bytes.
func relayTimeout(base time.Duration, reqs []ports.Request) time.Duration {
	return base + time.Duration(ports.RequestBytes(reqs))*time.Second/relayBytesPerSecond
}

// relayContext bounds the relay of reqs: relayTimeout, longer by the time
// for the large writes queued ahead of them in this node's log (a small
// SET relayed while a 100 MB one replicates is answered only after it).
func (s *Service) relayContext(ctx context.Context, reqs []ports.Request) (context.Context, context.CancelFunc) {
	return ports.BacklogContext(ctx, relayTimeout(s.cfg.RelayTimeout, reqs), relayBytesPerSecond, s.backlog())
}

// backlog returns the node's LargeBacklog, or nil if it has none.
func (s *Service) backlog() func() uint64 {
	if b, ok := s.node.(ports.Backlogger); ok {
		return b.LargeBacklog
	}
	return nil
}

// LargeBacklog implements ports.Backlogger: the node's, or 0.
func (s *Service) LargeBacklog() uint64 {
	if b, ok := s.node.(ports.Backlogger); ok {
		return b.LargeBacklog()
	}
	return 0
}

// shareBytes: a write whose arguments come to this many bytes or more has
// them pointed at its encoding once encoded (shareLarge); collectBytes:
// and a collection follows.
const (
	shareBytes   = 1 << 20
	collectBytes = 32 << 20
)

// shareLarge points the arguments of r, a write just encoded as cmd, at
// their bytes in cmd, in the caller's own slices (ports.KV allows Do
// that: the bytes are equal), so that a large value is held once while
// it replicates: the copy the caller read it into (a client's buffer,
// hundreds of MB for a large SET) is garbage from here. For a very large
// write a collection follows, so that the log's batch, the next
// allocation of the value's size, reuses that memory rather than growing
// the heap past it (see BENCHMARKS.md, "Large values, stop 19").
func shareLarge(r ports.Request, cmd []byte) {
	n := ports.RequestBytes([]ports.Request{r})
	if n < shareBytes {
		return
	}
	c, err := domain.DecodeCommand(cmd)
	calls := []domain.Call{r.Call}
	if r.IsTx {
		calls = r.Tx
	}
	if err != nil || len(c.Calls) != len(calls) {
		return // cmd was encoded from r just now: cannot happen
	}
	for i := range calls {
		copy(calls[i].Args, c.Calls[i].Args)
	}
	if n >= collectBytes {
		runtime.GC()
	}
}
