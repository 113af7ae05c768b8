package contract

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// LogHarness is an open, empty LogStore and the means to crash and reopen
// it.
type LogHarness struct {
	// Store is the store under test.
	Store ports.LogStore
	// Crash simulates a crash of the process that holds the store: the
	// store is abandoned without Sync or Close, and the store reopened from
	// what survived is returned. Writes since the last Sync may be lost.
	Crash func() ports.LogStore
	// Reopen closes the store cleanly and returns it reopened.
	Reopen func() ports.LogStore
	// CrashLosesUnsynced says that Crash loses every write made since the
	// last Sync, as a real power cut may. The suite then checks exactly
	// that; otherwise it only checks that what survives is whole.
	CrashLosesUnsynced bool
}

// diffEntries is cmp.Diff for entries, treating nil and empty Data alike,
// with a fast path for the common equal case: cmp is slow on long logs.
func diffEntries(want, got []domain.Entry) string {
	if slices.EqualFunc(want, got, func(a, b domain.Entry) bool {
		return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type && bytes.Equal(a.Data, b.Data)
	}) {
		return ""
	}
	return cmp.Diff(want, got, cmpopts.EquateEmpty())
}

// TestLogStore runs the ports.LogStore contract against the stores open
// returns.
func TestLogStore(t *testing.T, open func(t *testing.T) LogHarness) {
	t.Run("Empty", func(t *testing.T) { logEmpty(t, open(t)) })
	t.Run("AppendAndRead", func(t *testing.T) { logAppendAndRead(t, open(t)) })
	t.Run("AppendRejects", func(t *testing.T) { logAppendRejects(t, open(t)) })
	t.Run("EntriesMaxBytes", func(t *testing.T) { logEntriesMaxBytes(t, open(t)) })
	t.Run("RangeErrors", func(t *testing.T) { logRangeErrors(t, open(t)) })
	t.Run("TruncateSuffix", func(t *testing.T) { logTruncateSuffix(t, open(t)) })
	t.Run("Purge", func(t *testing.T) { logPurge(t, open(t)) })
	t.Run("PurgeEmpty", func(t *testing.T) { logPurgeEmpty(t, open(t)) })
	t.Run("SyncThenCrash", func(t *testing.T) { logSyncThenCrash(t, open(t)) })
	t.Run("CrashKeepsAppendWhole", func(t *testing.T) { logCrashKeepsAppendWhole(t, open(t)) })
	t.Run("CrashAfterTruncateAndAppend", func(t *testing.T) { logCrashAfterTruncateAndAppend(t, open(t)) })
	t.Run("SyncedTruncateAndPurgeSurvive", func(t *testing.T) { logSyncedTruncateAndPurgeSurvive(t, open(t)) })
	t.Run("Reopen", func(t *testing.T) { logReopen(t, open(t)) })
	t.Run("NoAliasing", func(t *testing.T) { logNoAliasing(t, open(t)) })
	t.Run("Closed", func(t *testing.T) { logClosed(t, open(t)) })
	t.Run("RandomOps", func(t *testing.T) { logRandomOps(t, open) })
}

// makeEntries returns entries [lo,hi) of term, each with distinct Data of
// a size that varies with the index (some empty), so that a store mixing
// up entries or sizes shows.
func makeEntries(lo, hi domain.Index, term domain.Term) []domain.Entry {
	var es []domain.Entry
	for i := lo; i < hi; i++ {
		var data []byte
		if i%5 != 0 {
			data = bytes.Repeat([]byte(fmt.Sprintf("%d/%d;", term, i)), int(i%7)+1)
		}
		es = append(es, domain.Entry{Index: i, Term: term, Type: domain.EntryType(i % 3), Data: data})
	}
	return es
}

func cat(parts ...[]domain.Entry) []domain.Entry {
	var out []domain.Entry
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func mustAppend(t *testing.T, s ports.LogStore, es []domain.Entry) {
	t.Helper()
	if err := s.Append(es); err != nil {
		t.Fatalf("Append [%d..%d]: %v", es[0].Index, es[len(es)-1].Index, err)
	}
}

func mustSync(t *testing.T, s ports.LogStore) {
	t.Helper()
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

func bounds(t *testing.T, s ports.LogStore) (first, last domain.Index) {
	t.Helper()
	first, err := s.FirstIndex()
	if err != nil {
		t.Fatalf("FirstIndex: %v", err)
	}
	last, err = s.LastIndex()
	if err != nil {
		t.Fatalf("LastIndex: %v", err)
	}
	return first, last
}

// checkLog checks that s holds exactly want, starting at first (want may be
// empty: then the log is empty with FirstIndex first).
func checkLog(t *testing.T, s ports.LogStore, first domain.Index, want []domain.Entry) {
	t.Helper()
	gotFirst, gotLast := bounds(t, s)
	wantLast := first + domain.Index(len(want)) - 1
	if gotFirst != first || gotLast != wantLast {
		t.Fatalf("bounds: got [%d,%d], want [%d,%d]", gotFirst, gotLast, first, wantLast)
	}
	if len(want) == 0 {
		return
	}
	got, err := s.Entries(first, wantLast+1, 0)
	if err != nil {
		t.Fatalf("Entries [%d,%d): %v", first, wantLast+1, err)
	}
	if d := diffEntries(want, got); d != "" {
		t.Fatalf("Entries [%d,%d) (-want +got):\n%s", first, wantLast+1, d)
	}
	for _, e := range want {
		term, err := s.Term(e.Index)
		if err != nil || term != e.Term {
			t.Fatalf("Term(%d) = %d, %v; want %d", e.Index, term, err, e.Term)
		}
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %v", what, err, target)
	}
}

func logEmpty(t *testing.T, h LogHarness) {
	s := h.Store
	if first, last := bounds(t, s); first != 1 || last != 0 {
		t.Fatalf("new store: bounds [%d,%d], want [1,0]", first, last)
	}
	_, err := s.Term(0)
	wantErr(t, "Term(0) of an empty log", err, domain.ErrCompacted)
	_, err = s.Term(1)
	wantErr(t, "Term(1) of an empty log", err, domain.ErrUnavailable)
	_, err = s.Entries(1, 2, 0)
	wantErr(t, "Entries [1,2) of an empty log", err, domain.ErrUnavailable)
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync of an empty log: %v", err)
	}
}

func logAppendAndRead(t *testing.T, h LogHarness) {
	s := h.Store
	want := cat(makeEntries(1, 4, 1), makeEntries(4, 8, 2))
	mustAppend(t, s, want[:3])
	mustAppend(t, s, want[3:4]) // a batch of one
	mustAppend(t, s, want[4:])
	checkLog(t, s, 1, want)
	for lo := domain.Index(1); lo <= 7; lo++ {
		for hi := lo + 1; hi <= 8; hi++ {
			got, err := s.Entries(lo, hi, 0)
			if err != nil {
				t.Fatalf("Entries [%d,%d): %v", lo, hi, err)
			}
			if d := diffEntries(want[lo-1:hi-1], got); d != "" {
				t.Fatalf("Entries [%d,%d) (-want +got):\n%s", lo, hi, d)
			}
		}
	}
}

func logAppendRejects(t *testing.T, h LogHarness) {
	s := h.Store
	// On an empty log the first entry must be 1.
	if err := s.Append(makeEntries(2, 4, 1)); err == nil {
		t.Fatalf("Append starting at 2 to an empty log: no error")
	}
	checkLog(t, s, 1, nil)

	want := makeEntries(1, 4, 1)
	mustAppend(t, s, want)
	bad := map[string][]domain.Entry{
		"gap after last":            makeEntries(5, 7, 1),
		"overlap without truncate":  makeEntries(3, 5, 2),
		"restart from 1":            makeEntries(1, 2, 2),
		"non-contiguous batch":      {makeEntries(4, 5, 1)[0], makeEntries(6, 7, 1)[0]},
		"batch going backwards":     {makeEntries(4, 5, 1)[0], makeEntries(4, 5, 1)[0]},
		"valid start, bad later on": cat(makeEntries(4, 6, 1), makeEntries(7, 8, 1)),
	}
	for name, es := range bad {
		if err := s.Append(es); err == nil {
			t.Fatalf("Append %s: no error", name)
		}
		checkLog(t, s, 1, want) // nothing changed, not even a prefix
	}
	if err := s.Append(nil); err != nil {
		t.Fatalf("Append(nil): %v", err)
	}
	checkLog(t, s, 1, want)
}

func logEntriesMaxBytes(t *testing.T, h LogHarness) {
	s := h.Store
	all := makeEntries(1, 21, 3)
	mustAppend(t, s, all)
	var total uint64
	for _, e := range all {
		total += e.Size()
	}
	for lo := domain.Index(1); lo <= 20; lo += 3 {
		for maxBytes := uint64(1); maxBytes <= total+1; maxBytes += 7 {
			got, err := s.Entries(lo, 21, maxBytes)
			if err != nil {
				t.Fatalf("Entries [%d,21) max %d: %v", lo, maxBytes, err)
			}
			if len(got) == 0 {
				t.Fatalf("Entries [%d,21) max %d: no entry; want at least one", lo, maxBytes)
			}
			if d := diffEntries(all[lo-1:int(lo-1)+len(got)], got); d != "" {
				t.Fatalf("Entries [%d,21) max %d: not a prefix of the range (-want +got):\n%s", lo, maxBytes, d)
			}
			var size uint64
			for _, e := range got {
				size += e.Size()
			}
			if len(got) > 1 && size > maxBytes {
				t.Fatalf("Entries [%d,21) max %d: %d entries of %d bytes", lo, maxBytes, len(got), size)
			}
			// Stopping early is only allowed when the next entry would
			// pass the limit.
			if next := int(lo-1) + len(got); next < len(all) && size+all[next].Size() <= maxBytes {
				t.Fatalf("Entries [%d,21) max %d: stopped after %d entries (%d bytes) though entry %d (%d bytes) fits",
					lo, maxBytes, len(got), size, all[next].Index, all[next].Size())
			}
		}
	}
	// A single entry larger than the limit still comes back.
	got, err := s.Entries(2, 21, 1)
	if err != nil || len(got) != 1 || got[0].Index != 2 {
		t.Fatalf("Entries [2,21) max 1 = %v, %v; want entry 2 alone", got, err)
	}
}

func logRangeErrors(t *testing.T, h LogHarness) {
	s := h.Store
	mustAppend(t, s, makeEntries(1, 7, 1))
	if err := s.Purge(3); err != nil {
		t.Fatalf("Purge(3): %v", err)
	}
	for _, c := range []struct {
		lo, hi domain.Index
		want   error
	}{
		{1, 5, domain.ErrCompacted},
		{3, 4, domain.ErrCompacted},
		{4, 8, domain.ErrUnavailable},
		{7, 8, domain.ErrUnavailable},
		{9, 12, domain.ErrUnavailable},
	} {
		_, err := s.Entries(c.lo, c.hi, 0)
		wantErr(t, fmt.Sprintf("Entries [%d,%d) of log [4,6]", c.lo, c.hi), err, c.want)
	}
	for i, want := range map[domain.Index]error{0: domain.ErrCompacted, 3: domain.ErrCompacted, 7: domain.ErrUnavailable, 100: domain.ErrUnavailable} {
		_, err := s.Term(i)
		wantErr(t, fmt.Sprintf("Term(%d) of log [4,6]", i), err, want)
	}
	// Both ends of the stored range are readable.
	got, err := s.Entries(4, 7, 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("Entries [4,7) = %d entries, %v; want 3", len(got), err)
	}
	// lo < hi is required.
	if _, err := s.Entries(5, 5, 0); err == nil {
		t.Fatalf("Entries [5,5): no error")
	}
	if _, err := s.Entries(6, 5, 0); err == nil {
		t.Fatalf("Entries [6,5): no error")
	}
}

func logTruncateSuffix(t *testing.T, h LogHarness) {
	s := h.Store
	base := makeEntries(1, 6, 1)
	mustAppend(t, s, base)

	// Past the end: a no-op.
	if err := s.TruncateSuffix(6); err != nil {
		t.Fatalf("TruncateSuffix(6) of [1,5]: %v", err)
	}
	if err := s.TruncateSuffix(100); err != nil {
		t.Fatalf("TruncateSuffix(100) of [1,5]: %v", err)
	}
	checkLog(t, s, 1, base)

	// In the middle, then replace the suffix with another term's entries.
	if err := s.TruncateSuffix(3); err != nil {
		t.Fatalf("TruncateSuffix(3): %v", err)
	}
	checkLog(t, s, 1, base[:2])
	_, err := s.Term(3)
	wantErr(t, "Term(3) after TruncateSuffix(3)", err, domain.ErrUnavailable)
	repl := makeEntries(3, 9, 2)
	mustAppend(t, s, repl)
	checkLog(t, s, 1, cat(base[:2], repl))

	// The last entry alone.
	if err := s.TruncateSuffix(8); err != nil {
		t.Fatalf("TruncateSuffix(8): %v", err)
	}
	checkLog(t, s, 1, cat(base[:2], repl[:5]))

	// From the first index: the log becomes empty where it stood.
	if err := s.Purge(2); err != nil {
		t.Fatalf("Purge(2): %v", err)
	}
	// Below the first index is not allowed and changes nothing.
	if err := s.TruncateSuffix(2); err == nil {
		t.Fatalf("TruncateSuffix(2) below first index 3: no error")
	}
	checkLog(t, s, 3, repl[:5])
	if err := s.TruncateSuffix(3); err != nil {
		t.Fatalf("TruncateSuffix(3) at first index: %v", err)
	}
	checkLog(t, s, 3, nil)
	again := makeEntries(3, 5, 3)
	mustAppend(t, s, again)
	checkLog(t, s, 3, again)
}

func logPurge(t *testing.T, h LogHarness) {
	s := h.Store
	all := makeEntries(1, 11, 1)
	mustAppend(t, s, all)

	// In the middle.
	if err := s.Purge(4); err != nil {
		t.Fatalf("Purge(4): %v", err)
	}
	checkLog(t, s, 5, all[4:])
	// Below the first index: a no-op.
	for _, upTo := range []domain.Index{0, 2, 4} {
		if err := s.Purge(upTo); err != nil {
			t.Fatalf("Purge(%d) below first index 5: %v", upTo, err)
		}
		checkLog(t, s, 5, all[4:])
	}
	// Appending goes on after the last index.
	more := makeEntries(11, 13, 2)
	mustAppend(t, s, more)
	checkLog(t, s, 5, cat(all[4:], more))

	// At the end: empty, first index just after.
	if err := s.Purge(12); err != nil {
		t.Fatalf("Purge(12) at last index: %v", err)
	}
	checkLog(t, s, 13, nil)
	if err := s.Append(makeEntries(12, 13, 2)); err == nil {
		t.Fatalf("Append at 12 after Purge(12): no error")
	}
	next := makeEntries(13, 15, 2)
	mustAppend(t, s, next)
	checkLog(t, s, 13, next)

	// Past the end: empty with FirstIndex upTo+1 and LastIndex upTo.
	if err := s.Purge(20); err != nil {
		t.Fatalf("Purge(20) past last index 14: %v", err)
	}
	checkLog(t, s, 21, nil)
	_, err := s.Term(20)
	wantErr(t, "Term(20) after Purge(20)", err, domain.ErrCompacted)
	if err := s.Append(makeEntries(15, 16, 2)); err == nil {
		t.Fatalf("Append at 15 after Purge(20): no error")
	}
	last := makeEntries(21, 23, 4)
	mustAppend(t, s, last)
	checkLog(t, s, 21, last)
}

func logPurgeEmpty(t *testing.T, h LogHarness) {
	s := h.Store
	if err := s.Purge(0); err != nil {
		t.Fatalf("Purge(0) of a new log: %v", err)
	}
	checkLog(t, s, 1, nil)
	// A node restoring a snapshot at 7 purges its empty log past the end.
	if err := s.Purge(7); err != nil {
		t.Fatalf("Purge(7) of a new log: %v", err)
	}
	checkLog(t, s, 8, nil)
	es := makeEntries(8, 10, 5)
	mustAppend(t, s, es)
	checkLog(t, s, 8, es)
}

func logSyncThenCrash(t *testing.T, h LogHarness) {
	s := h.Store
	synced := makeEntries(1, 4, 1)
	mustAppend(t, s, synced)
	mustSync(t, s)
	unsynced := makeEntries(4, 6, 1)
	mustAppend(t, s, unsynced)
	checkLog(t, s, 1, cat(synced, unsynced)) // visible before the sync

	s = h.Crash()
	if h.CrashLosesUnsynced {
		checkLog(t, s, 1, synced)
	} else if _, last := bounds(t, s); last == 3 {
		checkLog(t, s, 1, synced)
	} else {
		checkLog(t, s, 1, cat(synced, unsynced))
	}
	// The reopened store takes appends and syncs as usual.
	_, last := bounds(t, s)
	tail := makeEntries(last+1, last+3, 2)
	mustAppend(t, s, tail)
	mustSync(t, s)
	s = h.Crash()
	_, last2 := bounds(t, s)
	if last2 != last+2 {
		t.Fatalf("after a synced append and a crash: last index %d, want %d", last2, last+2)
	}
}

func logCrashKeepsAppendWhole(t *testing.T, h LogHarness) {
	s := h.Store
	head := makeEntries(1, 3, 1)
	mustAppend(t, s, head)
	mustSync(t, s)
	// One big Append, of entries large enough that a store writing them
	// piecewise would show it.
	batch := makeEntries(3, 40, 1)
	for i := range batch {
		batch[i].Data = bytes.Repeat([]byte{byte(i)}, 4096)
	}
	mustAppend(t, s, batch)
	s = h.Crash()
	_, last := bounds(t, s)
	switch {
	case last == 2:
		checkLog(t, s, 1, head)
	case last == 39 && !h.CrashLosesUnsynced:
		checkLog(t, s, 1, cat(head, batch))
	default:
		t.Fatalf("after a crash during an unsynced Append of [3,39]: last index %d, want 2 (lost whole)%s", last,
			map[bool]string{false: " or 39 (kept whole)"}[h.CrashLosesUnsynced])
	}
}

func logCrashAfterTruncateAndAppend(t *testing.T, h LogHarness) {
	s := h.Store
	old := makeEntries(1, 6, 1)
	mustAppend(t, s, old)
	mustSync(t, s)
	if err := s.TruncateSuffix(3); err != nil {
		t.Fatalf("TruncateSuffix(3): %v", err)
	}
	repl := makeEntries(3, 5, 2)
	mustAppend(t, s, repl)
	s = h.Crash()
	if h.CrashLosesUnsynced {
		checkLog(t, s, 1, old)
		return
	}
	// Any of: nothing kept, the truncation kept, both kept. Never the
	// replacement over the old suffix.
	_, last := bounds(t, s)
	switch term, err := s.Term(3); {
	case last == 5 && err == nil && term == 1:
		checkLog(t, s, 1, old)
	case last == 2:
		checkLog(t, s, 1, old[:2])
	default:
		checkLog(t, s, 1, cat(old[:2], repl))
	}
}

func logSyncedTruncateAndPurgeSurvive(t *testing.T, h LogHarness) {
	s := h.Store
	all := makeEntries(1, 11, 1)
	mustAppend(t, s, all)
	mustSync(t, s)
	if err := s.TruncateSuffix(8); err != nil {
		t.Fatalf("TruncateSuffix(8): %v", err)
	}
	if err := s.Purge(3); err != nil {
		t.Fatalf("Purge(3): %v", err)
	}
	if h.CrashLosesUnsynced {
		// Unsynced, both are lost.
		s = h.Crash()
		checkLog(t, s, 1, all)
		if err := s.TruncateSuffix(8); err != nil {
			t.Fatalf("TruncateSuffix(8): %v", err)
		}
		if err := s.Purge(3); err != nil {
			t.Fatalf("Purge(3): %v", err)
		}
	}
	mustSync(t, s)
	s = h.Crash()
	checkLog(t, s, 4, all[3:7])

	// A purge past the end, synced, survives too.
	if err := s.Purge(30); err != nil {
		t.Fatalf("Purge(30): %v", err)
	}
	mustSync(t, s)
	s = h.Crash()
	checkLog(t, s, 31, nil)
}

func logReopen(t *testing.T, h LogHarness) {
	s := h.Store
	want := makeEntries(1, 9, 1)
	mustAppend(t, s, want)
	if err := s.Purge(2); err != nil {
		t.Fatalf("Purge(2): %v", err)
	}
	mustSync(t, s)
	s = h.Reopen()
	checkLog(t, s, 3, want[2:])
	s = h.Reopen()
	checkLog(t, s, 3, want[2:])
}

func logNoAliasing(t *testing.T, h LogHarness) {
	s := h.Store
	in := makeEntries(1, 4, 1)
	want := makeEntries(1, 4, 1)
	mustAppend(t, s, in)
	// The caller reuses its buffers after Append.
	for i := range in {
		for j := range in[i].Data {
			in[i].Data[j] = 'X'
		}
		in[i].Term = 99
	}
	checkLog(t, s, 1, want)
	// The caller modifies what Entries returned.
	got, err := s.Entries(1, 4, 0)
	if err != nil {
		t.Fatalf("Entries: %v", err)
	}
	for i := range got {
		for j := range got[i].Data {
			got[i].Data[j] = 'Y'
		}
		got[i].Index, got[i].Term = 77, 77
	}
	_ = append(got[:1], domain.Entry{Index: 55})
	checkLog(t, s, 1, want)
}

func logClosed(t *testing.T, h LogHarness) {
	s := h.Store
	mustAppend(t, s, makeEntries(1, 3, 1))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := s.FirstIndex()
	wantErr(t, "FirstIndex after Close", err, domain.ErrClosed)
	_, err = s.LastIndex()
	wantErr(t, "LastIndex after Close", err, domain.ErrClosed)
	_, err = s.Term(1)
	wantErr(t, "Term after Close", err, domain.ErrClosed)
	_, err = s.Entries(1, 2, 0)
	wantErr(t, "Entries after Close", err, domain.ErrClosed)
	wantErr(t, "Append after Close", s.Append(makeEntries(3, 4, 1)), domain.ErrClosed)
	wantErr(t, "TruncateSuffix after Close", s.TruncateSuffix(2), domain.ErrClosed)
	wantErr(t, "Purge after Close", s.Purge(1), domain.ErrClosed)
	wantErr(t, "Sync after Close", s.Sync(), domain.ErrClosed)
	wantErr(t, "Close after Close", s.Close(), domain.ErrClosed)
}

// logModel is the reference a store is compared with in logRandomOps.
type logModel struct {
	first   domain.Index
	entries []domain.Entry
}

func (m logModel) last() domain.Index { return m.first + domain.Index(len(m.entries)) - 1 }

// logRandomOps drives a store with a seeded random sequence of every
// operation and compares it with a model after each. With a store that
// loses unsynced writes it crashes too, and the model with it.
func logRandomOps(t *testing.T, open func(t *testing.T) LogHarness) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			h := open(t)
			s := h.Store
			rng := rand.New(rand.NewPCG(seed, 0))
			cur := logModel{first: 1}
			durable := cur
			var term domain.Term = 1
			for step := 0; step < 400; step++ {
				var op string
				switch r := rng.IntN(100); {
				case r < 45:
					n := domain.Index(rng.IntN(8) + 1)
					if rng.IntN(4) == 0 {
						term++
					}
					es := makeEntries(cur.last()+1, cur.last()+1+n, term)
					op = fmt.Sprintf("Append [%d,%d]", es[0].Index, es[len(es)-1].Index)
					mustAppend(t, s, es)
					cur.entries = append(cur.entries[:len(cur.entries):len(cur.entries)], es...)
				case r < 60:
					from := cur.first + domain.Index(rng.IntN(len(cur.entries)+3))
					op = fmt.Sprintf("TruncateSuffix(%d)", from)
					if err := s.TruncateSuffix(from); err != nil {
						t.Fatalf("seed=%d step %d: %s: %v", seed, step, op, err)
					}
					if from <= cur.last() {
						cur.entries = cur.entries[: from-cur.first : from-cur.first]
					}
				case r < 70:
					upTo := domain.Index(max(0, int(cur.first)+rng.IntN(len(cur.entries)+3)-2))
					op = fmt.Sprintf("Purge(%d)", upTo)
					if err := s.Purge(upTo); err != nil {
						t.Fatalf("seed=%d step %d: %s: %v", seed, step, op, err)
					}
					switch {
					case upTo < cur.first:
					case upTo >= cur.last():
						cur = logModel{first: upTo + 1}
					default:
						cur = logModel{first: upTo + 1, entries: cur.entries[upTo+1-cur.first:]}
					}
				case r < 85:
					op = "Sync"
					mustSync(t, s)
					durable = cur
				case r < 95 && h.CrashLosesUnsynced:
					op = "Crash"
					s = h.Crash()
					cur = durable
				default:
					op = "Sync+Reopen"
					mustSync(t, s)
					durable = cur
					s = h.Reopen()
				}
				t.Logf("step %d: %s", step, op)
				checkLog(t, s, cur.first, cur.entries)
			}
		})
	}
}
