//go:build seshatplant

package main

import (
	"flag"

	"github.com/seshat-kv/seshat/consensus"
)

// In builds with the seshatplant tag, -plant switches on one of the
// planted bugs (consensus.Plant lists them) in every node, to show that the
// simulator catches it. Untagged builds have neither the flag nor the
// switches.
func init() {
	plantFlag = flag.String("plant", "", `switch on a planted bug in every node: "vote", "commit", "ack", "leader-unsynced", "apply-uncommitted", "answer-by-index", "purge-unsynced", "two-changes" or "early-change"`)
	plantBug = consensus.Plant
}
