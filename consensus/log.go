package consensus

import (
	"fmt"

	"github.com/seshat-kv/seshat/domain"
)

// raftLog is the core's in-memory view of the log: the entries after the
// compaction point (offset), and the cursors that say how far they are
// committed, handed out to apply, applied, handed out to persist and
// persisted.
//
// Invariants: offset <= applied <= applying <= committed <= lastIndex, and
// persisted < unstable <= lastIndex+1 (persisted may lag behind unstable
// while a Ready is being handled).
type raftLog struct {
	// offset is the compaction point: entries[0] has index offset+1.
	offset     domain.Index
	offsetTerm domain.Term
	entries    []domain.Entry

	committed domain.Index
	// applying is the last index handed out in Ready.CommittedEntries.
	applying domain.Index
	// applied is the last index the driver reported applied (Advance).
	applied domain.Index
	// unstable is the first index not yet handed out in Ready.Entries.
	unstable domain.Index
	// persisted is the last index known durable (Advance).
	persisted domain.Index
}

func newRaftLog(snap domain.SnapshotMeta, ents []domain.Entry) (*raftLog, error) {
	for i, e := range ents {
		if want := snap.Index + 1 + domain.Index(i); e.Index != want {
			return nil, fmt.Errorf("consensus: state: entry %d has index %d, want %d: %w", i, e.Index, want, domain.ErrCorrupt)
		}
		if i > 0 && e.Term < ents[i-1].Term || i == 0 && e.Term < snap.Term {
			return nil, fmt.Errorf("consensus: state: entry %d has term %d below its predecessor's: %w", e.Index, e.Term, domain.ErrCorrupt)
		}
	}
	l := &raftLog{
		offset:     snap.Index,
		offsetTerm: snap.Term,
		entries:    append([]domain.Entry(nil), ents...),
		committed:  snap.Index,
		applying:   snap.Index,
		applied:    snap.Index,
	}
	l.persisted = l.lastIndex()
	l.unstable = l.lastIndex() + 1
	return l, nil
}

func (l *raftLog) firstIndex() domain.Index { return l.offset + 1 }

func (l *raftLog) lastIndex() domain.Index { return l.offset + domain.Index(len(l.entries)) }

func (l *raftLog) lastTerm() domain.Term {
	if len(l.entries) == 0 {
		return l.offsetTerm
	}
	return l.entries[len(l.entries)-1].Term
}

// term returns the term of the entry at i: ErrCompacted below the
// compaction point, ErrUnavailable past the end.
func (l *raftLog) term(i domain.Index) (domain.Term, error) {
	switch {
	case i == l.offset:
		return l.offsetTerm, nil
	case i < l.offset:
		return 0, fmt.Errorf("consensus: term at %d (compacted through %d): %w", i, l.offset, domain.ErrCompacted)
	case i > l.lastIndex():
		return 0, fmt.Errorf("consensus: term at %d (last %d): %w", i, l.lastIndex(), domain.ErrUnavailable)
	}
	return l.entries[i-l.offset-1].Term, nil
}

// termOK is term for indexes known to be in range, without the error cost.
func (l *raftLog) termOK(i domain.Index) (domain.Term, bool) {
	if i < l.offset || i > l.lastIndex() {
		return 0, false
	}
	if i == l.offset {
		return l.offsetTerm, true
	}
	return l.entries[i-l.offset-1].Term, true
}

func (l *raftLog) matchTerm(i domain.Index, t domain.Term) bool {
	tt, ok := l.termOK(i)
	return ok && tt == t
}

// isUpToDate reports whether a log ending at (lastIndex, lastTerm) is at
// least as up to date as this one (Raft §5.4.1).
func (l *raftLog) isUpToDate(lastIndex domain.Index, lastTerm domain.Term) bool {
	lt := l.lastTerm()
	return lastTerm > lt || lastTerm == lt && lastIndex >= l.lastIndex()
}

// slice returns entries [lo, hi), stopping once their total size would pass
// maxBytes (0: no limit) but holding at least one entry. The result shares
// the log's backing array but has its capacity clipped, so appending to it
// cannot write into the log, and the log never rewrites an element in
// place (truncation reallocates).
func (l *raftLog) slice(lo, hi domain.Index, maxBytes uint64) []domain.Entry {
	if lo <= l.offset || hi > l.lastIndex()+1 || lo > hi {
		panic(fmt.Sprintf("consensus: slice [%d,%d) out of log (%d,%d]", lo, hi, l.offset, l.lastIndex()))
	}
	a, b := int(lo-l.offset-1), int(hi-l.offset-1)
	if maxBytes > 0 && b > a {
		size := l.entries[a].Size()
		end := a + 1
		for end < b {
			s := l.entries[end].Size()
			if size+s > maxBytes {
				break
			}
			size += s
			end++
		}
		b = end
	}
	return l.entries[a:b:b]
}

// findConflict returns the index of the first of ents that is not in the
// log (a different term at its index, or past the end), or 0 when every
// one is there already.
func (l *raftLog) findConflict(ents []domain.Entry) domain.Index {
	for _, e := range ents {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// findConflictByTerm returns the largest index <= index whose term is <=
// term, with that term. Entries above it have terms greater than term, so
// they cannot match a log whose entry at index has term (fast
// backtracking). It stops at the compaction point.
func (l *raftLog) findConflictByTerm(index domain.Index, term domain.Term) (domain.Index, domain.Term) {
	if last := l.lastIndex(); index > last {
		index = last
	}
	for ; index > l.offset; index-- {
		if t := l.entries[index-l.offset-1].Term; t <= term {
			return index, t
		}
	}
	return l.offset, l.offsetTerm
}

// append adds ents, which must be contiguous and start at or before
// lastIndex+1, replacing any entries from ents[0].Index on. It panics if
// that would remove a committed entry. It reports whether it truncated.
func (l *raftLog) append(ents ...domain.Entry) (truncated bool) {
	if len(ents) == 0 {
		return false
	}
	first := ents[0].Index
	last := l.lastIndex()
	switch {
	case first <= l.committed:
		panic(fmt.Sprintf("consensus: append at %d would overwrite committed entries (committed %d, term at %d is %d, new term %d)",
			first, l.committed, first, l.entries[first-l.offset-1].Term, ents[0].Term))
	case first > last+1:
		panic(fmt.Sprintf("consensus: append at %d leaves a gap after last index %d", first, last))
	case first == last+1:
		l.entries = append(l.entries, ents...)
		return false
	}
	// Truncate: clip the capacity so that the new entries go to a new
	// array and slices already handed out (Ready, messages) stay intact.
	keep := int(first - l.offset - 1)
	l.entries = append(l.entries[:keep:keep], ents...)
	l.unstable = min(l.unstable, first)
	l.persisted = min(l.persisted, first-1)
	return true
}

// commitTo raises the commit index to i (never lowers it).
func (l *raftLog) commitTo(i domain.Index) bool {
	if i <= l.committed {
		return false
	}
	if i > l.lastIndex() {
		panic(fmt.Sprintf("consensus: commit %d past last index %d", i, l.lastIndex()))
	}
	l.committed = i
	return true
}

// restore resets the log to start right after the snapshot meta.
func (l *raftLog) restore(meta domain.SnapshotMeta) {
	// Whatever was persisted up to the old commit index is identical to
	// the leader's log, and so covered by the snapshot; past it nothing is
	// known durable until the snapshot is installed (Advance).
	l.persisted = min(l.persisted, l.committed)
	l.offset = meta.Index
	l.offsetTerm = meta.Term
	l.entries = nil
	l.committed = meta.Index
	l.applying = meta.Index
	l.applied = meta.Index
	l.unstable = meta.Index + 1
}

// compact drops the entries through i (which must be applied).
func (l *raftLog) compact(i domain.Index) {
	t, err := l.term(i)
	if err != nil {
		panic(fmt.Sprintf("consensus: compact through %d: %v", i, err))
	}
	n := int(i - l.offset)
	// The live entries move to a new array, so that the dropped prefix
	// (a value of hundreds of MB, say) is freed now rather than when
	// append next outgrows the old array, which few writes after a large
	// one took minutes to do. Elements are never cleared in place:
	// messages in flight may still share them.
	l.entries = append([]domain.Entry(nil), l.entries[n:]...)
	l.offset = i
	l.offsetTerm = t
}
