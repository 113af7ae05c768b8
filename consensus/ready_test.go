package consensus

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// TestEntriesAccessor checks the read accessors tests and drivers use.
func TestEntriesAccessor(t *testing.T) {
	r, _ := New(testConfig(1, ids(3)), State{Vote: domain.Vote{Term: 2},
		Snapshot: domain.SnapshotMeta{Index: 3, Term: 1}, Entries: ents(4, 1, 2, 2)})
	got, err := r.Entries(4, 7)
	if err != nil || len(got) != 3 || got[2].Index != 6 {
		t.Fatalf("Entries(4,7): %v %v", got, err)
	}
	if _, err := r.Entries(3, 5); !errorsIs(err, domain.ErrCompacted) {
		t.Fatalf("Entries(3,5): %v", err)
	}
	if _, err := r.Entries(5, 8); !errorsIs(err, domain.ErrUnavailable) {
		t.Fatalf("Entries(5,8): %v", err)
	}
	if _, err := r.Term(7); !errorsIs(err, domain.ErrUnavailable) {
		t.Fatalf("Term(7): %v", err)
	}
	// Appending to a returned slice never writes into the log.
	got = append(got, domain.Entry{Index: 99})
	if r.log.lastIndex() != 6 {
		t.Fatal("log changed")
	}
	if got2, _ := r.Entries(4, 7); len(got2) != 3 {
		t.Fatal("log changed")
	}
}
