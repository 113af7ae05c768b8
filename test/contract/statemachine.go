package contract

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// SMHarness is an open, fresh StateMachine, the KVReader of its state, and
// the means to crash and reopen them.
type SMHarness struct {
	// SM is the state machine under test.
	SM ports.StateMachine
	// Reader reads SM's applied state (often SM itself).
	Reader ports.KVReader
	// Crash abandons SM without Sync or Close, as a crash would, and
	// returns it reopened from what was durable.
	Crash func() (ports.StateMachine, ports.KVReader)
	// Reopen closes SM cleanly and returns it reopened.
	Reopen func() (ports.StateMachine, ports.KVReader)
	// CrashLosesUnsynced says that Crash rolls the state back to exactly
	// the last Sync or Restore. Otherwise the suite accepts any applied
	// point from there on, as long as the data matches that point.
	CrashLosesUnsynced bool
}

// TestStateMachine runs the ports.StateMachine and ports.KVReader contract
// against the state machines open returns.
func TestStateMachine(t *testing.T, open func(t *testing.T) SMHarness) {
	t.Run("Fresh", func(t *testing.T) { smFresh(t, open(t)) })
	t.Run("ApplyResults", func(t *testing.T) { smApplyResults(t, open(t)) })
	t.Run("BlankAndMembership", func(t *testing.T) { smBlankAndMembership(t, open(t)) })
	t.Run("ScriptMatchesModel", func(t *testing.T) { smScriptMatchesModel(t, open(t)) })
	t.Run("IdempotentApply", func(t *testing.T) { smIdempotent(t, open(t)) })
	t.Run("GapIsAnError", func(t *testing.T) { smGap(t, open(t)) })
	t.Run("CorruptEntry", func(t *testing.T) { smCorruptEntry(t, open(t)) })
	t.Run("SnapshotRestore", func(t *testing.T) { smSnapshotRestore(t, open) })
	t.Run("RestoreCorrupt", func(t *testing.T) { smRestoreCorrupt(t, open) })
	t.Run("SyncThenCrash", func(t *testing.T) { smSyncThenCrash(t, open(t)) })
	t.Run("RestoreIsDurable", func(t *testing.T) { smRestoreIsDurable(t, open) })
	t.Run("Reopen", func(t *testing.T) { smReopen(t, open(t)) })
	t.Run("SnapshotWhileApplying", func(t *testing.T) { smSnapshotWhileApplying(t, open) })
	t.Run("Closed", func(t *testing.T) { smClosed(t, open(t)) })
	t.Run("KeyspaceMatchesEngine", func(t *testing.T) { smKeyspaceMatchesEngine(t, open) })
	t.Run("KeyspaceCrash", func(t *testing.T) { smKeyspaceCrash(t, open(t)) })
	t.Run("KeyspaceLargeElements", func(t *testing.T) { smKeyspaceLargeElements(t, open) })
	t.Run("KeyspaceLargeStrings", func(t *testing.T) { smKeyspaceLargeStrings(t, open) })
	t.Run("KeyspaceWatchedSwap", func(t *testing.T) { smKeyspaceWatchedSwap(t, open) })
}

// --- helpers -------------------------------------------------------------

func set(k, v string) domain.Op {
	return domain.Op{Kind: domain.OpSet, Key: []byte(k), Value: []byte(v)}
}
func del(k string) domain.Op { return domain.Op{Kind: domain.OpDel, Key: []byte(k)} }

func normal(i domain.Index, term domain.Term, ops ...domain.Op) domain.Entry {
	return domain.Entry{Index: i, Term: term, Type: domain.EntryNormal, Data: domain.EncodeCommand(domain.Command{Ops: ops})}
}

func blank(i domain.Index, term domain.Term) domain.Entry {
	return domain.Entry{Index: i, Term: term, Type: domain.EntryBlank}
}

func membership(i domain.Index, term domain.Term, m domain.Membership) domain.Entry {
	return domain.Entry{Index: i, Term: term, Type: domain.EntryMembership, Data: domain.EncodeMembership(m)}
}

func apply(t *testing.T, sm ports.StateMachine, es ...domain.Entry) []domain.Result {
	t.Helper()
	res, err := sm.Apply(es)
	if err != nil {
		t.Fatalf("Apply [%d..%d]: %v", es[0].Index, es[len(es)-1].Index, err)
	}
	if len(res) != len(es) {
		t.Fatalf("Apply of %d entries returned %d results", len(es), len(res))
	}
	return res
}

func applied(t *testing.T, sm ports.StateMachine) domain.SnapshotMeta {
	t.Helper()
	m, err := sm.Applied()
	if err != nil {
		t.Fatalf("Applied: %v", err)
	}
	return m
}

var cmpMeta = cmpopts.EquateEmpty()

func checkApplied(t *testing.T, sm ports.StateMachine, want domain.SnapshotMeta) {
	t.Helper()
	if d := cmp.Diff(want, applied(t, sm), cmpMeta); d != "" {
		t.Fatalf("Applied (-want +got):\n%s", d)
	}
}

// smModel is the reference state machine the suite compares with.
type smModel struct {
	data map[string]string
	meta domain.SnapshotMeta
}

func newModel() *smModel { return &smModel{data: map[string]string{}} }

func (m *smModel) apply(e domain.Entry) domain.Result {
	if e.Index <= m.meta.Index {
		return domain.Result{}
	}
	var n int64
	switch e.Type {
	case domain.EntryNormal:
		c, err := domain.DecodeCommand(e.Data)
		if err != nil {
			panic(err)
		}
		for _, op := range c.Ops {
			switch op.Kind {
			case domain.OpSet:
				m.data[string(op.Key)] = string(op.Value)
				n++
			case domain.OpDel:
				if _, ok := m.data[string(op.Key)]; ok {
					delete(m.data, string(op.Key))
					n++
				}
			}
		}
	case domain.EntryMembership:
		mm, err := domain.DecodeMembership(e.Data)
		if err != nil {
			panic(err)
		}
		m.meta.Membership = mm
	}
	m.meta.Index, m.meta.Term = e.Index, e.Term
	return domain.Result{N: n}
}

func (m *smModel) clone() *smModel {
	return &smModel{data: maps.Clone(m.data), meta: domain.SnapshotMeta{
		Index: m.meta.Index, Term: m.meta.Term, Membership: m.meta.Membership.Clone()}}
}

// scriptKeys are the keys a script touches; checkState reads all of them.
var scriptKeys = func() []string {
	var ks []string
	for i := range 12 {
		ks = append(ks, fmt.Sprintf("key-%d", i))
	}
	return append(ks, "", "\x00bin\xff")
}()

// script returns n entries from index 1 with a seeded mix of sets,
// deletes, blanks and membership changes, and the model after each (states
// [i] is the state after entry i; states[0] the empty one).
func script(seed uint64, n int) ([]domain.Entry, []*smModel) {
	rng := rand.New(rand.NewPCG(seed, 7))
	m := newModel()
	states := []*smModel{m.clone()}
	var es []domain.Entry
	term := domain.Term(1)
	for i := domain.Index(1); i <= domain.Index(n); i++ {
		if rng.IntN(10) == 0 {
			term++
		}
		var e domain.Entry
		switch r := rng.IntN(20); {
		case r == 0:
			e = blank(i, term)
		case r == 1:
			voters := []domain.NodeID{1, 2, 3}[:rng.IntN(3)+1]
			var learners []domain.NodeID
			if rng.IntN(2) == 0 {
				learners = []domain.NodeID{domain.NodeID(4 + rng.IntN(3))}
			}
			e = membership(i, term, domain.Membership{Voters: voters, Learners: learners})
		default:
			var ops []domain.Op
			for range rng.IntN(4) + 1 {
				k := scriptKeys[rng.IntN(len(scriptKeys))]
				if rng.IntN(3) == 0 {
					ops = append(ops, del(k))
				} else {
					ops = append(ops, set(k, fmt.Sprintf("v%d.%d", i, rng.IntN(1000))+string(bytes.Repeat([]byte{'z'}, rng.IntN(40)))))
				}
			}
			e = normal(i, term, ops...)
		}
		m.apply(e)
		es = append(es, e)
		states = append(states, m.clone())
	}
	return es, states
}

// checkState checks that r holds exactly the model's data (over the
// script's keys and any extra ones named).
func checkState(t *testing.T, r ports.KVReader, want *smModel, extra ...string) {
	t.Helper()
	for _, k := range append(slices.Clone(scriptKeys), extra...) {
		got, err := r.Get([]byte(k))
		wv, ok := want.data[k]
		switch {
		case ok && err != nil:
			t.Fatalf("at applied %d: Get(%q): %v; want %q", want.meta.Index, k, err, wv)
		case ok && string(got) != wv:
			t.Fatalf("at applied %d: Get(%q) = %q; want %q", want.meta.Index, k, got, wv)
		case !ok && !errors.Is(err, domain.ErrNotFound):
			t.Fatalf("at applied %d: Get(%q) = %q, %v; want ErrNotFound", want.meta.Index, k, got, err)
		}
	}
}

func snapshot(t *testing.T, sm ports.StateMachine) (domain.SnapshotMeta, []byte) {
	t.Helper()
	var buf bytes.Buffer
	meta, err := sm.Snapshot(&buf)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return meta, buf.Bytes()
}

// --- tests ---------------------------------------------------------------

func smFresh(t *testing.T, h SMHarness) {
	checkApplied(t, h.SM, domain.SnapshotMeta{})
	checkState(t, h.Reader, newModel())
	if err := h.SM.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if res, err := h.SM.Apply(nil); err != nil || len(res) != 0 {
		t.Fatalf("Apply(nil) = %v, %v; want no results, no error", res, err)
	}
}

func smApplyResults(t *testing.T, h SMHarness) {
	sm := h.SM
	steps := []struct {
		e    domain.Entry
		n    int64
		want map[string]string
	}{
		{normal(1, 1, set("a", "1"), set("b", "2")), 2, map[string]string{"a": "1", "b": "2"}},
		{normal(2, 1, del("a"), del("missing")), 1, map[string]string{"b": "2"}},
		{normal(3, 1, set("a", "x"), del("a")), 2, map[string]string{"b": "2"}},
		{normal(4, 2, set("b", "3"), set("b", "4")), 2, map[string]string{"b": "4"}},
		{normal(5, 2, set("e", "")), 1, map[string]string{"b": "4", "e": ""}},
		{normal(6, 2), 0, map[string]string{"b": "4", "e": ""}},
		{normal(7, 3, del("e"), set("c", "5"), del("b")), 3, map[string]string{"c": "5"}},
	}
	for _, s := range steps {
		res := apply(t, sm, s.e)
		if res[0].N != s.n || res[0].Err != nil {
			t.Fatalf("entry %d: Result %+v; want N=%d, no Err", s.e.Index, res[0], s.n)
		}
		checkState(t, h.Reader, &smModel{data: s.want, meta: domain.SnapshotMeta{Index: s.e.Index}}, "a", "b", "c", "e", "missing")
		checkApplied(t, sm, domain.SnapshotMeta{Index: s.e.Index, Term: s.e.Term})
	}
	// The value read is the caller's to keep and change.
	v, err := h.Reader.Get([]byte("c"))
	if err != nil {
		t.Fatalf("Get(c): %v", err)
	}
	v[0] = 'X'
	if v, err := h.Reader.Get([]byte("c")); err != nil || string(v) != "5" {
		t.Fatalf("Get(c) after changing a returned value = %q, %v; want 5", v, err)
	}
}

func smBlankAndMembership(t *testing.T, h SMHarness) {
	sm := h.SM
	m3 := domain.Membership{Voters: []domain.NodeID{1, 2, 3}}
	m4 := domain.Membership{Voters: []domain.NodeID{1, 2}, Learners: []domain.NodeID{4}}
	res := apply(t, sm, blank(1, 1))
	checkApplied(t, sm, domain.SnapshotMeta{Index: 1, Term: 1})
	res = append(res, apply(t, sm, membership(2, 1, m3))...)
	checkApplied(t, sm, domain.SnapshotMeta{Index: 2, Term: 1, Membership: m3})
	res = append(res, apply(t, sm, normal(3, 2, set("k", "v")), blank(4, 3))...)
	checkApplied(t, sm, domain.SnapshotMeta{Index: 4, Term: 3, Membership: m3})
	res = append(res, apply(t, sm, membership(5, 3, m4), normal(6, 3, set("k", "w")))...)
	checkApplied(t, sm, domain.SnapshotMeta{Index: 6, Term: 3, Membership: m4})
	want := []domain.Result{{}, {}, {N: 1}, {}, {}, {N: 1}}
	if d := cmp.Diff(want, res, cmpopts.EquateEmpty(), cmpopts.EquateErrors()); d != "" {
		t.Fatalf("results (-want +got):\n%s", d)
	}
	// Applied returns a copy: changing it changes nothing.
	got := applied(t, sm)
	got.Membership.Voters[0] = 99
	checkApplied(t, sm, domain.SnapshotMeta{Index: 6, Term: 3, Membership: m4})
}

func smScriptMatchesModel(t *testing.T, h SMHarness) {
	es, states := script(1, 300)
	for i := 0; i < len(es); {
		n := min(1+i%9, len(es)-i) // batches of varied sizes
		res := apply(t, h.SM, es[i:i+n]...)
		for j, r := range res {
			want := states[i+j].clone().apply(es[i+j])
			if r.N != want.N || r.Err != nil {
				t.Fatalf("entry %d: Result %+v; want N=%d", es[i+j].Index, r, want.N)
			}
		}
		i += n
		checkState(t, h.Reader, states[i])
		checkApplied(t, h.SM, states[i].meta)
	}
}

func smIdempotent(t *testing.T, h SMHarness) {
	es, states := script(2, 40)
	apply(t, h.SM, es[:30]...)
	// Replays, whole and in part, change nothing and return zero Results.
	for _, replay := range [][]domain.Entry{es[:30], es[10:20], es[29:30], es[:1]} {
		res := apply(t, h.SM, replay...)
		if d := cmp.Diff(make([]domain.Result, len(replay)), res, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("replay of [%d..%d]: results (-want +got):\n%s", replay[0].Index, replay[len(replay)-1].Index, d)
		}
		checkState(t, h.Reader, states[30])
		checkApplied(t, h.SM, states[30].meta)
	}
	// A batch overlapping the applied point applies only what is new.
	res := apply(t, h.SM, es[25:35]...)
	for j, r := range res {
		var wantN int64
		if idx := 25 + j; idx >= 30 {
			wantN = states[idx].clone().apply(es[idx]).N
		}
		if r.N != wantN || r.Err != nil {
			t.Fatalf("entry %d in an overlapping batch: Result %+v; want N=%d", es[25+j].Index, r, wantN)
		}
	}
	checkState(t, h.Reader, states[35])
	checkApplied(t, h.SM, states[35].meta)
}

func smGap(t *testing.T, h SMHarness) {
	es, states := script(3, 10)
	if _, err := h.SM.Apply(es[1:2]); err == nil {
		t.Fatalf("Apply of entry 2 to a fresh state machine: no error")
	}
	checkApplied(t, h.SM, domain.SnapshotMeta{})
	apply(t, h.SM, es[:3]...)
	if _, err := h.SM.Apply(es[4:6]); err == nil {
		t.Fatalf("Apply of [5,6] at applied 3: no error")
	}
	checkApplied(t, h.SM, states[3].meta)
	checkState(t, h.Reader, states[3])
	// The gap may come inside a batch; whatever was applied is whole.
	if _, err := h.SM.Apply([]domain.Entry{es[3], es[5]}); err == nil {
		t.Fatalf("Apply of [4,6] at applied 3: no error")
	}
	at := applied(t, h.SM).Index
	if at != 3 && at != 4 {
		t.Fatalf("after a failed Apply of [4,6] at 3: applied %d, want 3 or 4", at)
	}
	checkState(t, h.Reader, states[at])
	apply(t, h.SM, es[at:]...)
	checkState(t, h.Reader, states[10])
}

func smCorruptEntry(t *testing.T, h SMHarness) {
	apply(t, h.SM, normal(1, 1, set("a", "1")))
	good := domain.EncodeCommand(domain.Command{Ops: []domain.Op{set("a", "2")}})
	for name, e := range map[string]domain.Entry{
		"empty command":            {Index: 2, Term: 1, Type: domain.EntryNormal},
		"truncated command":        {Index: 2, Term: 1, Type: domain.EntryNormal, Data: good[:len(good)-1]},
		"bad op kind":              {Index: 2, Term: 1, Type: domain.EntryNormal, Data: []byte{1, 1, 9, 0, 0}},
		"garbage membership":       {Index: 2, Term: 1, Type: domain.EntryMembership, Data: []byte{0xff, 3}},
		"membership naming node 0": membership(2, 1, domain.Membership{Voters: []domain.NodeID{1, 0}}),
		"membership naming twice":  membership(2, 1, domain.Membership{Voters: []domain.NodeID{1}, Learners: []domain.NodeID{1}}),
	} {
		_, err := h.SM.Apply([]domain.Entry{e})
		wantErr(t, "Apply of a "+name, err, domain.ErrCorrupt)
		checkApplied(t, h.SM, domain.SnapshotMeta{Index: 1, Term: 1})
		if v, err := h.Reader.Get([]byte("a")); err != nil || string(v) != "1" {
			t.Fatalf("after Apply of a %s: Get(a) = %q, %v; want 1", name, v, err)
		}
	}
}

func smSnapshotRestore(t *testing.T, open func(t *testing.T) SMHarness) {
	es, states := script(4, 120)
	src := open(t)
	apply(t, src.SM, es[:100]...)
	meta, image := snapshot(t, src.SM)
	if d := cmp.Diff(states[100].meta, meta, cmpMeta); d != "" {
		t.Fatalf("Snapshot meta (-want +got):\n%s", d)
	}

	// Into a fresh instance.
	dst := open(t)
	if err := dst.SM.Restore(meta, bytes.NewReader(image)); err != nil {
		t.Fatalf("Restore into a fresh state machine: %v", err)
	}
	checkApplied(t, dst.SM, meta)
	checkState(t, dst.Reader, states[100])
	// It goes on from the snapshot like the source does.
	apply(t, dst.SM, es[100:]...)
	apply(t, src.SM, es[100:]...)
	checkState(t, dst.Reader, states[120])
	checkState(t, src.Reader, states[120])

	// Into an instance with other, newer state: the image replaces it
	// all, keys the image lacks included.
	other := open(t)
	apply(t, other.SM, es...)
	apply(t, other.SM, normal(121, 9, set("only-here", "x")))
	if err := other.SM.Restore(meta, bytes.NewReader(image)); err != nil {
		t.Fatalf("Restore over an existing state: %v", err)
	}
	checkApplied(t, other.SM, meta)
	checkState(t, other.Reader, states[100], "only-here")

	// An empty state machine's image restores too.
	empty := open(t)
	emeta, eimage := snapshot(t, empty.SM)
	if err := other.SM.Restore(emeta, bytes.NewReader(eimage)); err != nil {
		t.Fatalf("Restore of an empty image: %v", err)
	}
	checkApplied(t, other.SM, domain.SnapshotMeta{})
	checkState(t, other.Reader, newModel(), "only-here")
}

func smRestoreCorrupt(t *testing.T, open func(t *testing.T) SMHarness) {
	es, states := script(5, 60)
	src := open(t)
	apply(t, src.SM, es[:50]...)
	meta, image := snapshot(t, src.SM)

	victim := open(t)
	apply(t, victim.SM, es[:20]...)
	check := func(what string, r []byte) {
		t.Helper()
		err := victim.SM.Restore(meta, bytes.NewReader(r))
		if !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("Restore of an image with %s: error %v, want one wrapping ErrCorrupt", what, err)
		}
		checkApplied(t, victim.SM, states[20].meta)
		checkState(t, victim.Reader, states[20])
	}
	// Every single flipped byte is caught.
	for i := range image {
		bad := slices.Clone(image)
		bad[i] ^= 0x20
		check(fmt.Sprintf("byte %d of %d flipped", i, len(image)), bad)
	}
	for _, n := range []int{0, 1, len(image) / 2, len(image) - 4, len(image) - 1} {
		check(fmt.Sprintf("only %d of %d bytes", n, len(image)), image[:n])
	}
	check("a byte appended", append(slices.Clone(image), 0))
	check("the image twice", append(slices.Clone(image), image...))
	// The victim is unharmed and still works.
	apply(t, victim.SM, es[20:30]...)
	checkState(t, victim.Reader, states[30])
	if err := victim.SM.Restore(meta, bytes.NewReader(image)); err != nil {
		t.Fatalf("Restore of the intact image: %v", err)
	}
	checkState(t, victim.Reader, states[50])
}

func smSyncThenCrash(t *testing.T, h SMHarness) {
	// Each round applies 15 entries and may keep them all (a store whose
	// crash keeps unsynced data); the script covers every round.
	const rounds = 6
	es, states := script(6, 5+rounds*15)
	sm, r := h.SM, h.Reader
	// A crash before any Sync.
	apply(t, sm, es[:5]...)
	sm, r = h.Crash()
	at := checkCrashPoint(t, sm, r, states, 0, 5, h.CrashLosesUnsynced)

	synced := at
	for range rounds {
		// Replay from the log what was lost, as a restarted node does,
		// then go on a little and sync, then a little more unsynced.
		next := synced + 10
		apply(t, sm, es[synced:next]...)
		if err := sm.Sync(); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		synced = next
		apply(t, sm, es[synced:synced+5]...)
		sm, r = h.Crash()
		synced = checkCrashPoint(t, sm, r, states, synced, synced+5, h.CrashLosesUnsynced)
	}
}

// checkCrashPoint checks the state after a crash: the applied point is the
// last synced one (or, for a store that may keep unsynced writes, anywhere
// up to the last applied), and the data is exactly the state there.
func checkCrashPoint(t *testing.T, sm ports.StateMachine, r ports.KVReader, states []*smModel, synced, last domain.Index, strict bool) domain.Index {
	t.Helper()
	at := applied(t, sm).Index
	if at < synced || at > last || (strict && at != synced) {
		t.Fatalf("after a crash with %d synced and %d applied: applied index %d", synced, last, at)
	}
	checkApplied(t, sm, states[at].meta)
	checkState(t, r, states[at])
	return at
}

func smRestoreIsDurable(t *testing.T, open func(t *testing.T) SMHarness) {
	es, states := script(7, 30)
	src := open(t)
	apply(t, src.SM, es...)
	meta, image := snapshot(t, src.SM)
	h := open(t)
	apply(t, h.SM, es[:10]...)
	if err := h.SM.Restore(meta, bytes.NewReader(image)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	sm, r := h.Crash()
	checkApplied(t, sm, meta)
	checkState(t, r, states[30])
}

func smReopen(t *testing.T, h SMHarness) {
	es, states := script(8, 30)
	apply(t, h.SM, es[:20]...)
	if err := h.SM.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	sm, r := h.Reopen()
	checkApplied(t, sm, states[20].meta)
	checkState(t, r, states[20])
	apply(t, sm, es[20:]...)
	checkState(t, r, states[30])
}

func smSnapshotWhileApplying(t *testing.T, open func(t *testing.T) SMHarness) {
	es, states := script(9, 400)
	src := open(t)
	var wg sync.WaitGroup
	wg.Add(1)
	applyErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := range es {
			if _, err := src.SM.Apply(es[i : i+1]); err != nil {
				applyErr <- err
				return
			}
		}
	}()
	type snap struct {
		meta  domain.SnapshotMeta
		image []byte
	}
	var snaps []snap
	for range 8 {
		meta, image := snapshot(t, src.SM)
		snaps = append(snaps, snap{meta, image})
	}
	wg.Wait()
	select {
	case err := <-applyErr:
		t.Fatalf("Apply: %v", err)
	default:
	}
	// Each image is the state at exactly the point its meta names.
	for _, s := range snaps {
		dst := open(t)
		if err := dst.SM.Restore(s.meta, bytes.NewReader(s.image)); err != nil {
			t.Fatalf("Restore of a snapshot taken at %d: %v", s.meta.Index, err)
		}
		if d := cmp.Diff(states[s.meta.Index].meta, s.meta, cmpMeta); d != "" {
			t.Fatalf("snapshot meta at %d (-want +got):\n%s", s.meta.Index, d)
		}
		checkState(t, dst.Reader, states[s.meta.Index])
	}
}

func smClosed(t *testing.T, h SMHarness) {
	sm := h.SM
	apply(t, sm, normal(1, 1, set("a", "1")))
	meta, image := snapshot(t, sm)
	if err := sm.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := sm.Apply([]domain.Entry{normal(2, 1, set("b", "2"))})
	wantErr(t, "Apply after Close", err, domain.ErrClosed)
	_, err = sm.Applied()
	wantErr(t, "Applied after Close", err, domain.ErrClosed)
	wantErr(t, "Sync after Close", sm.Sync(), domain.ErrClosed)
	_, err = sm.Snapshot(&bytes.Buffer{})
	wantErr(t, "Snapshot after Close", err, domain.ErrClosed)
	wantErr(t, "Restore after Close", sm.Restore(meta, bytes.NewReader(image)), domain.ErrClosed)
	wantErr(t, "Close after Close", sm.Close(), domain.ErrClosed)
	if any(h.Reader) == any(h.SM) {
		_, err = h.Reader.Get([]byte("a"))
		wantErr(t, "Get after Close", err, domain.ErrClosed)
	}
}
