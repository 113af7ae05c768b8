package consensus

// plantSet switches on deliberate safety bugs for the planted-bug test,
// which proves the simulator catches them. Production code cannot set it:
// the only setter, Plant, exists only in builds with the seshatplant tag
// (plant_on.go).
type plantSet struct {
	// voteNotPersisted: a vote is cast without being handed out to persist.
	voteNotPersisted bool
	// commitByCounting: entries of earlier terms commit by counting replicas
	// (the Figure 8 bug).
	commitByCounting bool
	// ackBeforeSync: a follower acknowledges an append before it is synced.
	ackBeforeSync bool
	// leaderUnsynced: the leader counts its own entries toward the commit
	// quorum as soon as it hands them out to write, before they are synced.
	leaderUnsynced bool
	// twoChanges: a leader proposes a membership change while an earlier
	// one is not committed (two changes in flight).
	twoChanges bool
	// earlyChange: a new leader changes the membership before it has
	// committed an entry of its term (the bug of the thesis's erratum).
	earlyChange bool
	// The driver's bugs (consensus/node reads them with Planted):
	// applyUncommitted: the leader applies its own entries once they are
	// written, before they commit.
	applyUncommitted bool
	// answerByIndex: a proposal is answered by the entry applied at its
	// index, whatever that entry's term.
	answerByIndex bool
	// purgeUnsynced: compaction purges the log without waiting for the
	// state machine's sync.
	purgeUnsynced bool
}

// switches names the planted bugs (see Plant).
func (p *plantSet) switches() map[string]*bool {
	return map[string]*bool{
		"vote":              &p.voteNotPersisted,
		"commit":            &p.commitByCounting,
		"ack":               &p.ackBeforeSync,
		"leader-unsynced":   &p.leaderUnsynced,
		"two-changes":       &p.twoChanges,
		"early-change":      &p.earlyChange,
		"apply-uncommitted": &p.applyUncommitted,
		"answer-by-index":   &p.answerByIndex,
		"purge-unsynced":    &p.purgeUnsynced,
	}
}

// Planted reports whether the planted bug named bug (see Plant) is
// switched on in c; it is always false outside seshatplant builds. The
// driver in consensus/node reads its own bugs through it, once.
func (c *Config) Planted(bug string) bool {
	b, ok := c.plant.switches()[bug]
	return ok && *b
}
