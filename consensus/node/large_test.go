package node

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// A job carrying a large value is never applied on the loop, however few
// its entries.
func TestHeavyApplyJobsGoToTheStage(t *testing.T) {
	small := &ApplyJob{Entries: []domain.Entry{{Data: make([]byte, 100)}, {Data: make([]byte, 100)}}}
	if small.heavy() {
		t.Fatal("a 200-byte job is heavy")
	}
	big := &ApplyJob{Entries: []domain.Entry{{Data: make([]byte, inlineApplyBytes+1)}}}
	if !big.heavy() {
		t.Fatal("a job over inlineApplyBytes is not heavy")
	}
}
