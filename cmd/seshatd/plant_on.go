//go:build seshatplant

package main

import (
	"fmt"
	"os"

	"github.com/seshat-kv/seshat/consensus"
)

// planted switches on the deliberate safety bug named by SESHAT_PLANT
// (consensus.Plant's names), so that the chaos test can show that its
// checkers catch it (make chaos-plant). Only seshatplant builds have it:
// GOFLAGS=-tags=seshatplant cmd/seshatd/image.sh TAG.
func planted(cfg consensus.Config) consensus.Config {
	bug := os.Getenv("SESHAT_PLANT")
	if bug == "" {
		return cfg
	}
	if err := consensus.Plant(&cfg, bug); err != nil {
		fmt.Fprintf(os.Stderr, "seshatd: SESHAT_PLANT: %v\n", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "seshatd: PLANTED BUG %q: this node is deliberately unsafe\n", bug)
	return cfg
}
