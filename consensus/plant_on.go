//go:build seshatplant

package consensus

import "fmt"

// Plant switches on one deliberate safety bug in cfg: "vote" (a vote that
// is not persisted), "commit" (commit an earlier term's entry by counting
// replicas) or "ack" (a follower acknowledges before its append is synced).
// It exists only in builds with the seshatplant tag.
func Plant(cfg *Config, bug string) error {
	switch bug {
	case "vote":
		cfg.plant.voteNotPersisted = true
	case "commit":
		cfg.plant.commitByCounting = true
	case "ack":
		cfg.plant.ackBeforeSync = true
	default:
		return fmt.Errorf("consensus: unknown planted bug %q", bug)
	}
	return nil
}
