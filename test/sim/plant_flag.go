//go:build seshatplant

package main

import (
	"flag"

	"github.com/seshat-kv/seshat/consensus"
)

// In builds with the seshatplant tag, -plant switches on one of the core's
// planted bugs ("vote", "commit", "ack") in every node, to show that the
// simulator catches it. Untagged builds have neither the flag nor the
// switches.
func init() {
	plantFlag = flag.String("plant", "", `switch on a planted bug in every core: "vote", "commit" or "ack"`)
	plantBug = consensus.Plant
}
