package chaos

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// settings are the run's knobs, from the environment make chaos sets.
type settings struct {
	seed     uint64
	duration time.Duration
	clusters []int
	plant    string
}

// enabled skips the test unless SESHAT_CHAOS=1 (make chaos): make test
// must not start containers. With it set, only a missing Docker skips.
func enabled(t *testing.T) settings {
	t.Helper()
	if os.Getenv("SESHAT_CHAOS") != "1" {
		t.Skip("the chaos test runs with make chaos (SESHAT_CHAOS=1)")
	}
	requireDocker(t)
	s := settings{seed: uint64(time.Now().UnixNano() % 1_000_000_000), clusters: []int{5, 3}}
	if v := os.Getenv("SESHAT_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SESHAT_CHAOS_SEED=%q: %v", v, err)
		}
		s.seed = n
	}
	if v := os.Getenv("SESHAT_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SESHAT_CHAOS_DURATION=%q: %v", v, err)
		}
		s.duration = d
	}
	if v := os.Getenv("SESHAT_CHAOS_CLUSTERS"); v != "" {
		s.clusters = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 3 {
				t.Fatalf("SESHAT_CHAOS_CLUSTERS=%q: want sizes of at least 3", v)
			}
			s.clusters = append(s.clusters, n)
		}
	}
	s.plant = os.Getenv("SESHAT_CHAOS_PLANT")
	return s
}

// evidenceDir is where a failing run leaves its evidence; removed when
// the run passes.
func evidenceDir(t *testing.T, seed uint64) string {
	dir, err := os.MkdirTemp(os.Getenv("SESHAT_CHAOS_DIR"), fmt.Sprintf("seshat-chaos-%d-", seed))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestChaos runs every nemesis against a 5-node and a 3-node cluster
// under the register, counter and list workloads, and fails on any
// violation. make chaos SEED=n replays a schedule, DURATION=30m runs
// longer (split between the clusters).
func TestChaos(t *testing.T) {
	s := enabled(t)
	if s.plant != "" {
		t.Skip("SESHAT_CHAOS_PLANT is for TestChaosFindsPlantedBug")
	}
	dir := evidenceDir(t, s.seed)
	var failures []string
	per := s.duration / time.Duration(len(s.clusters))
	for i, n := range s.clusters {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			res := runChaos(t, runConfig{Name: fmt.Sprintf("chaos-%d-%d", s.seed%100000, i), Nodes: n,
				Seed: s.seed + uint64(i), Duration: per}, dir)
			for _, f := range res.failed {
				t.Error(f)
			}
			failures = append(failures, res.failed...)
		})
	}
	if len(failures) > 0 || t.Failed() {
		fmt.Printf("chaos seed=%d FAILED: evidence (logs, schedules, porcupine's HTML) in %s; replay: make chaos SEED=%d\n", s.seed, dir, s.seed)
		return
	}
	os.RemoveAll(dir)
	fmt.Printf("chaos seed=%d verdict=ok (replay: make chaos SEED=%d)\n", s.seed, s.seed)
}
