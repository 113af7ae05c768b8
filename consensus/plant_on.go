//go:build seshatplant

package consensus

import "fmt"

// Plant switches on one deliberate safety bug in cfg. In the core: "vote"
// (a vote that is not persisted), "commit" (commit an earlier term's entry
// by counting replicas), "ack" (a follower acknowledges before its append
// is synced), "leader-unsynced" (the leader counts its own unsynced
// entries toward commit), "two-changes" (a membership change proposed while
// an earlier one is uncommitted), "early-change" (a new leader changes the
// membership before committing an entry of its term). In the driver (consensus/node): "apply-uncommitted"
// (the leader applies its entries before they commit), "answer-by-index"
// (a proposal is answered by whatever entry is applied at its index) and
// "purge-unsynced" (compaction purges the log before the state machine is
// synced). It exists only in builds with the seshatplant tag.
func Plant(cfg *Config, bug string) error {
	b, ok := cfg.plant.switches()[bug]
	if !ok {
		return fmt.Errorf("consensus: unknown planted bug %q", bug)
	}
	*b = true
	return nil
}
