package node_test

import (
	"errors"
	"testing"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

func entries(from domain.Index, terms ...domain.Term) []domain.Entry {
	var out []domain.Entry
	for i, t := range terms {
		out = append(out, domain.Entry{Index: from + domain.Index(i), Term: t, Type: domain.EntryBlank})
	}
	return out
}

// applyThrough makes kv's applied point index (term) by applying blanks.
func applyThrough(t *testing.T, kv *memory.KV, ents []domain.Entry) {
	t.Helper()
	if _, err := kv.Apply(ents); err != nil {
		t.Fatal(err)
	}
}

func TestLoadState(t *testing.T) {
	t.Run("fresh", func(t *testing.T) {
		st, err := node.LoadState(memory.NewLogStore(), memory.NewVoteStore(), memory.NewKV())
		if err != nil || st.Snapshot.Index != 0 || len(st.Entries) != 0 || st.Vote != (domain.Vote{}) {
			t.Fatalf("fresh state %+v, %v", st, err)
		}
	})
	t.Run("entries after the applied point", func(t *testing.T) {
		log, kv, vote := memory.NewLogStore(), memory.NewKV(), memory.NewVoteStore()
		ents := entries(1, 1, 1, 2, 2, 2) // indexes 1-5
		log.Append(ents)
		applyThrough(t, kv, ents[:2])
		vote.SetVote(domain.Vote{Term: 2, VotedFor: 3})
		st, err := node.LoadState(log, vote, kv)
		if err != nil {
			t.Fatal(err)
		}
		if st.Snapshot.Index != 2 || len(st.Entries) != 3 || st.Entries[0].Index != 3 || st.Vote.VotedFor != 3 {
			t.Fatalf("state %+v", st)
		}
	})
	t.Run("suffix after a replaced entry is dropped", func(t *testing.T) {
		// The state machine restored a snapshot at 3 (term 5); the stored
		// log still has an old entry 3 (term 2) and a suffix after it.
		log, kv := memory.NewLogStore(), memory.NewKV()
		log.Append(entries(1, 1, 2, 2, 2)) // indexes 1-4
		applyThrough(t, kv, append(entries(1, 1, 2), entries(3, 5)...))
		st, err := node.LoadState(log, memory.NewVoteStore(), kv)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Entries) != 0 || st.Snapshot.Index != 3 {
			t.Fatalf("state %+v: the suffix after a replaced entry must go", st)
		}
		if last, _ := log.LastIndex(); last != 3 {
			t.Fatalf("stored log ends at %d, want 3", last)
		}
	})
	t.Run("log purged past the applied point", func(t *testing.T) {
		log, kv := memory.NewLogStore(), memory.NewKV()
		log.Append(entries(1, 1, 1, 1, 1)) // indexes 1-4
		log.Purge(3)
		applyThrough(t, kv, entries(1, 1))
		_, err := node.LoadState(log, memory.NewVoteStore(), kv)
		if !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("LoadState = %v, want ErrCorrupt", err)
		}
	})
	t.Run("everything applied", func(t *testing.T) {
		log, kv := memory.NewLogStore(), memory.NewKV()
		log.Append(entries(1, 1, 1))                // indexes 1-2
		applyThrough(t, kv, entries(1, 1, 1, 1, 1)) // applied through 4, past the log
		st, err := node.LoadState(log, memory.NewVoteStore(), kv)
		if err != nil || len(st.Entries) != 0 || st.Snapshot.Index != 4 {
			t.Fatalf("state %+v, %v", st, err)
		}
		if first, _ := log.FirstIndex(); first != 5 {
			t.Fatalf("stored log starts at %d, want 5", first)
		}
	})
}
