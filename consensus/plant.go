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
}
