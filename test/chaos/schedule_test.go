package chaos

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The bounded schedule (what make chaos and CI run) has every nemesis at
// least once, and grow and shrink keep the cluster between 3 and 5 nodes
// (a 3-node cluster grows first, a 5-node one shrinks first), over the
// random steps of a long run too.
func TestScheduleEveryNemesisAndSizesInBounds(t *testing.T) {
	for _, tc := range []struct {
		nodes     int
		firstSize string // the first of grow/shrink in the schedule
	}{
		{nodes: 3, firstSize: "grow"},
		{nodes: 5, firstSize: "shrink"},
	} {
		for seed := range uint64(50) {
			steps := schedule(seed, 30*time.Minute, tc.nodes)
			seen := map[string]int{}
			for _, s := range steps[:len(nemeses)] {
				seen[s.Nemesis]++
			}
			var missing []string
			for _, n := range nemeses {
				if seen[n] == 0 {
					missing = append(missing, n)
				}
			}
			if diff := cmp.Diff([]string(nil), missing); diff != "" {
				t.Errorf("nodes=%d seed=%d: nemeses missing from the first pass (-want +got):\n%s", tc.nodes, seed, diff)
			}
			size, first := tc.nodes, ""
			for i, s := range steps {
				switch s.Nemesis {
				case "grow":
					size += 2
				case "shrink":
					size -= 2
				default:
					continue
				}
				if first == "" {
					first = s.Nemesis
				}
				if size < smallCluster || size > largeCluster {
					t.Fatalf("nodes=%d seed=%d: step %d %s takes the cluster to %d nodes", tc.nodes, seed, i, s.Nemesis, size)
				}
			}
			if first != tc.firstSize {
				t.Errorf("nodes=%d seed=%d: first size change %q, want %q", tc.nodes, seed, first, tc.firstSize)
			}
		}
	}
}

// A seed replays its schedule.
func TestScheduleReplays(t *testing.T) {
	if diff := cmp.Diff(schedule(42, time.Minute, 5), schedule(42, time.Minute, 5)); diff != "" {
		t.Errorf("two schedules of seed 42 differ (-first +second):\n%s", diff)
	}
}

// A change runs its actions in order during the fault, leaves what
// failed (and what follows it) for after the heal, and fails the step on
// a beforeHeal action that did not succeed by the heal.
func TestChangeRunsDuringFaultThenAfterHeal(t *testing.T) {
	var ran []string
	healed := false
	act := func(name string, needsHeal bool) func(time.Time) error {
		return func(time.Time) error {
			if needsHeal && !healed {
				ran = append(ran, name+":not-yet")
				return errors.New("no majority")
			}
			ran = append(ran, name)
			return nil
		}
	}
	for _, tc := range []struct {
		name         string
		build        func(ch *change)
		wantDuring   []string
		wantFailures []string
		wantAfter    []string
		wantFinish   []string
		wantRan      []string
	}{
		{
			name: "all during the fault",
			build: func(ch *change) {
				ch.add(false, "remove", act("remove", false))
				ch.add(false, "join", act("join", false))
			},
			wantRan: []string{"remove", "join"},
		},
		{
			name: "the rest after the heal",
			build: func(ch *change) {
				ch.add(false, "remove", act("remove", false))
				ch.add(false, "join", act("join", true))
				ch.add(false, "promoted", act("promoted", false))
			},
			wantAfter: []string{"join", "promoted"},
			wantRan:   []string{"remove", "join:not-yet", "join", "promoted"},
		},
		{
			name: "a check that must hold before the heal",
			build: func(ch *change) {
				ch.add(true, "refuses", act("refuses", true))
				ch.add(false, "back", act("back", false))
			},
			wantFailures: []string{"refuses: no majority"},
			wantRan:      []string{"refuses:not-yet", "back"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran, healed = nil, false
			ch := &change{}
			tc.build(ch)
			failures := ch.runUntil(time.Now())
			var after []string
			for _, a := range ch.todo {
				after = append(after, a.name)
			}
			healed = true
			finish := ch.finish(time.Now())
			if diff := cmp.Diff(tc.wantFailures, failures); diff != "" {
				t.Errorf("failures during the fault (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAfter, after); diff != "" {
				t.Errorf("left for after the heal (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantFinish, finish); diff != "" {
				t.Errorf("failures after the heal (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRan, ran); diff != "" {
				t.Errorf("actions run (-want +got):\n%s", diff)
			}
		})
	}
}
