package node

import (
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

var _ ports.Backlogger = (*Node)(nil)

// largeEntryBytes is the size from which an entry counts in the large
// backlog (see Node.LargeBacklog).
const largeEntryBytes = 1 << 20

// largeEntry is an entry of at least largeEntryBytes appended to this
// node's log and not yet applied.
type largeEntry struct {
	index domain.Index
	size  uint64
}

// noteLarge records the large entries of out's log jobs (loop-owned); a
// job that truncates the log drops those it replaces.
func (n *Node) noteLarge(out Output) {
	for _, j := range out.Log {
		if len(j.Entries) == 0 {
			continue
		}
		if j.Truncate {
			from := j.Entries[0].Index
			n.large = deleteLarge(n.large, func(e largeEntry) bool { return e.index >= from })
		}
		for i := range j.Entries {
			if s := uint64(len(j.Entries[i].Data)); s >= largeEntryBytes {
				n.large = append(n.large, largeEntry{index: j.Entries[i].Index, size: s})
			}
		}
	}
}

// pruneLarge forgets the large entries applied (or replaced by a
// snapshot) and publishes the bytes of those left.
func (n *Node) pruneLarge() {
	if len(n.large) == 0 {
		if n.largeBacklog.Load() != 0 {
			n.largeBacklog.Store(0) // the last ones were truncated
		}
		return
	}
	applied := n.d.Applied()
	n.large = deleteLarge(n.large, func(e largeEntry) bool { return e.index <= applied })
	var total uint64
	for _, e := range n.large {
		total += e.size
	}
	n.largeBacklog.Store(total)
}

func deleteLarge(l []largeEntry, drop func(largeEntry) bool) []largeEntry {
	out := l[:0]
	for _, e := range l {
		if !drop(e) {
			out = append(out, e)
		}
	}
	clear(l[len(out):])
	return out
}

// LargeBacklog returns the bytes of the large entries (of at least
// largeEntryBytes each) this node's log holds and has not applied yet. A
// write proposed now is applied after them: a caller waiting for one (the
// RESP server, a relay through a follower) gives it time for them, rather
// than a deadline meant for a stuck leader.
// A transport that reports the large appends it is still receiving
// (ports.Backlogger) adds them: they too come before a write proposed now.
func (n *Node) LargeBacklog() uint64 {
	b := n.largeBacklog.Load()
	if t, ok := n.cfg.Transport.(ports.Backlogger); ok {
		b += t.LargeBacklog()
	}
	return b
}
