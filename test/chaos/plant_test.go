package chaos

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestChaosFindsPlantedBug runs a short schedule of leader isolations
// against a cluster whose nodes carry a deliberate safety bug (an image
// built with -tags seshatplant, the bug named by SESHAT_CHAOS_PLANT and
// passed to seshatd as SESHAT_PLANT) and passes only if the checkers
// report a violation: the proof that they catch what they are for
// (make chaos-plant).
func TestChaosFindsPlantedBug(t *testing.T) {
	s := enabled(t)
	if s.plant == "" {
		t.Skip("set SESHAT_CHAOS_PLANT to a planted bug (make chaos-plant)")
	}
	dir := evidenceDir(t, s.seed)
	steps := []step{
		{Nemesis: "isolate-leader", Fault: 6 * time.Second, Pick: s.seed},
		{Nemesis: "halves", Fault: 5 * time.Second, Pick: s.seed + 1},
		{Nemesis: "isolate-leader", Fault: 6 * time.Second, Pick: s.seed + 2},
		{Nemesis: "kill-leader", Fault: 4 * time.Second, Pick: s.seed + 3},
	}
	res := runChaos(t, runConfig{Name: fmt.Sprintf("chaos-plant-%d", s.seed%100000), Nodes: 3, Seed: s.seed,
		Env: []string{"SESHAT_PLANT=" + s.plant}, Steps: steps}, dir)
	if len(res.failed) == 0 {
		os.RemoveAll(dir)
		t.Fatalf("planted bug %q: no checker found a violation (seed %d)", s.plant, s.seed)
	}
	fmt.Printf("chaos plant=%s seed=%d verdict=ok: the violation was found: %s (evidence in %s)\n",
		s.plant, s.seed, strings.Join(res.failed, "; "), dir)
}
