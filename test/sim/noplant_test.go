//go:build !seshatplant

package main

import (
	"flag"
	"testing"
)

// TestNoPlantFlag: an untagged build can switch on no planted bug.
func TestNoPlantFlag(t *testing.T) {
	if flag.Lookup("plant") != nil || plantFlag != nil || plantBug != nil {
		t.Fatal("an untagged build has the -plant flag")
	}
	opts := defaultOptions()
	opts.plant = "vote"
	if _, err := newSim(opts, 1); err == nil {
		t.Fatal("an untagged build accepted a planted bug")
	}
}
