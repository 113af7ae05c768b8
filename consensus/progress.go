package consensus

import "github.com/seshat-kv/seshat/domain"

// inflight is one MsgApp sent and not yet acknowledged: the last index it
// carried and the size of its entries.
type inflight struct {
	index domain.Index
	bytes uint64
}

// inflights is the window of MsgApps in flight to one follower.
type inflights struct {
	buf      []inflight
	bytes    uint64
	maxMsgs  int
	maxBytes uint64
}

func (in *inflights) add(index domain.Index, bytes uint64) {
	in.buf = append(in.buf, inflight{index: index, bytes: bytes})
	in.bytes += bytes
}

// freeLE forgets the messages whose last index is <= index: acknowledged.
func (in *inflights) freeLE(index domain.Index) {
	n := 0
	for n < len(in.buf) && in.buf[n].index <= index {
		in.bytes -= in.buf[n].bytes
		n++
	}
	if n > 0 {
		k := copy(in.buf, in.buf[n:])
		in.buf = in.buf[:k]
	}
}

// freeFirst forgets the oldest message in flight.
func (in *inflights) freeFirst() {
	if len(in.buf) > 0 {
		in.freeLE(in.buf[0].index)
	}
}

func (in *inflights) full() bool {
	return len(in.buf) >= in.maxMsgs || in.maxBytes > 0 && in.bytes >= in.maxBytes
}

func (in *inflights) reset() {
	in.buf = in.buf[:0]
	in.bytes = 0
}

// progress is the leader's view of one member.
type progress struct {
	match, next domain.Index
	state       ProgressState
	// probeSent: in Probe, an append is in flight; wait for its answer or
	// for a heartbeat response before sending another.
	probeSent bool
	// pendingSnapshot: in Snapshot, the index of the snapshot sent.
	pendingSnapshot domain.Index
	recentActive    bool
	learner         bool
	// lostData: see Progress.LostData.
	lostData  bool
	inflights inflights
	// readAck is the highest ReadIndex round this member acknowledged.
	readAck uint64
	// sentCommit is the highest commit index sent to this member in an
	// append.
	sentCommit domain.Index
}

func (pr *progress) becomeProbe() {
	if pr.state == ProgressSnapshot {
		pr.next = max(pr.match+1, pr.pendingSnapshot+1)
	} else {
		pr.next = pr.match + 1
	}
	pr.state = ProgressProbe
	pr.probeSent = false
	pr.pendingSnapshot = 0
	pr.inflights.reset()
}

func (pr *progress) becomeReplicate() {
	pr.state = ProgressReplicate
	pr.next = pr.match + 1
	pr.probeSent = false
	pr.pendingSnapshot = 0
	pr.inflights.reset()
}

func (pr *progress) becomeSnapshot(index domain.Index) {
	pr.state = ProgressSnapshot
	pr.pendingSnapshot = index
	pr.probeSent = false
	pr.inflights.reset()
}

// maybeUpdate records an acknowledgement of everything through n. It
// reports whether match grew.
func (pr *progress) maybeUpdate(n domain.Index) bool {
	updated := false
	if pr.match < n {
		pr.match = n
		pr.probeSent = false
		updated = true
	}
	pr.next = max(pr.next, n+1)
	return updated
}

// maybeDecrTo handles a rejection of the MsgApp whose previous index was
// rejected; hint is the index the follower suggests probing at. It reports
// false for a stale rejection.
func (pr *progress) maybeDecrTo(rejected, hint domain.Index) bool {
	if pr.state == ProgressReplicate {
		if rejected <= pr.match {
			return false
		}
		pr.next = max(min(rejected, hint+1), pr.match+1)
		return true
	}
	if pr.next-1 != rejected {
		return false
	}
	pr.next = max(min(rejected, hint+1), pr.match+1)
	pr.probeSent = false
	return true
}

// paused reports whether no append may be sent now.
func (pr *progress) paused() bool {
	switch pr.state {
	case ProgressProbe:
		return pr.probeSent
	case ProgressReplicate:
		return pr.inflights.full()
	}
	return true
}

// sent records a MsgApp carrying n entries through lastIndex, of bytes.
func (pr *progress) sent(n int, lastIndex domain.Index, bytes uint64) {
	switch pr.state {
	case ProgressReplicate:
		if n > 0 {
			pr.next = lastIndex + 1
			pr.inflights.add(lastIndex, bytes)
		}
	case ProgressProbe:
		pr.probeSent = true
	}
}
