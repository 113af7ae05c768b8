package consensus

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/seshat-kv/seshat/domain"
)

// memStore is what one node kept durable: a stand-in for the LogStore,
// VoteStore and StateMachine of a real driver.
type memStore struct {
	vote    domain.Vote
	snap    domain.SnapshotMeta
	entries []domain.Entry // after snap.Index
	applied []domain.Entry // every entry applied, in order
}

func (s *memStore) state() State {
	return State{Vote: s.vote, Snapshot: s.snap, Entries: slices.Clone(s.entries)}
}

// network wires cores in memory. Messages wait in a queue until delivered;
// links can be cut in either direction.
type network struct {
	t      testing.TB
	ids    []domain.NodeID
	nodes  map[domain.NodeID]*Raft
	cfgs   map[domain.NodeID]Config
	stores map[domain.NodeID]*memStore
	queue  []domain.Message
	cut    map[[2]domain.NodeID]bool
	down   map[domain.NodeID]bool
	// drop, if set, drops the messages for which it returns true.
	drop func(domain.Message) bool
	// onReady, if set, sees every Ready handled.
	onReady func(domain.NodeID, Ready)
	// discardApplied keeps only the last applied index (benchmarks).
	discardApplied bool
	// pending holds Readies taken whose persistence is not done yet
	// (takeReady/finishReady); a crash loses them.
	pending map[domain.NodeID]*Ready
	// appliedAt, if not nil, records every entry any node applied, to
	// check that no two nodes apply different entries at one index.
	appliedAt map[domain.Index]domain.Entry
}

func testConfig(id domain.NodeID, peers []domain.NodeID) Config {
	return Config{
		ID:             id,
		Peers:          peers,
		ElectionTicks:  10,
		HeartbeatTicks: 1,
		Rand:           rand.New(rand.NewPCG(uint64(id), 42)),
	}
}

func ids(n int) []domain.NodeID {
	out := make([]domain.NodeID, n)
	for i := range out {
		out[i] = domain.NodeID(i + 1)
	}
	return out
}

func emptyNetwork(t testing.TB) *network {
	return &network{
		t:      t,
		nodes:  map[domain.NodeID]*Raft{},
		cfgs:   map[domain.NodeID]Config{},
		stores: map[domain.NodeID]*memStore{},
		cut:    map[[2]domain.NodeID]bool{},
		down:   map[domain.NodeID]bool{},
	}
}

// newNetwork starts n fresh nodes 1..n; opt, if not nil, edits each config.
func newNetwork(t testing.TB, n int, opt func(*Config)) *network {
	t.Helper()
	nw := emptyNetwork(t)
	for _, id := range ids(n) {
		cfg := testConfig(id, ids(n))
		if opt != nil {
			opt(&cfg)
		}
		nw.add(cfg, State{})
	}
	return nw
}

// add starts a node with cfg from st.
func (nw *network) add(cfg Config, st State) *Raft {
	nw.t.Helper()
	r, err := New(cfg, st)
	if err != nil {
		nw.t.Fatalf("New(%d): %v", cfg.ID, err)
	}
	if _, ok := nw.nodes[cfg.ID]; !ok {
		nw.ids = append(nw.ids, cfg.ID)
		slices.Sort(nw.ids)
	}
	nw.nodes[cfg.ID] = r
	nw.cfgs[cfg.ID] = cfg
	nw.stores[cfg.ID] = &memStore{vote: st.Vote, snap: st.Snapshot, entries: slices.Clone(st.Entries)}
	return r
}

func (nw *network) node(id domain.NodeID) *Raft { return nw.nodes[id] }

// persist handles rd as a driver would, without sending anything.
func (nw *network) persist(id domain.NodeID, rd Ready) {
	s := nw.stores[id]
	if rd.Snapshot != nil {
		s.snap = rd.Snapshot.Meta
		s.entries = nil
		s.applied = append(s.applied, domain.Entry{Index: rd.Snapshot.Meta.Index, Term: rd.Snapshot.Meta.Term,
			Type: domain.EntryBlank, Data: []byte("snapshot")})
	}
	if rd.Vote != nil {
		s.vote = *rd.Vote
	}
	if len(rd.Entries) > 0 {
		first := rd.Entries[0].Index
		keep := int(first - s.snap.Index - 1)
		if keep < 0 || keep > len(s.entries) {
			nw.t.Fatalf("node %d: entries from %d do not fit the stored log (snap %d, %d entries)", id, first, s.snap.Index, len(s.entries))
		}
		s.entries = append(s.entries[:keep], rd.Entries...)
	}
	for _, e := range rd.CommittedEntries {
		if n := len(s.applied); n > 0 && s.applied[n-1].Index+1 != e.Index {
			nw.t.Fatalf("node %d: applied %d after %d", id, e.Index, s.applied[n-1].Index)
		}
		if nw.appliedAt != nil {
			if o, ok := nw.appliedAt[e.Index]; ok && (o.Term != e.Term || string(o.Data) != string(e.Data)) {
				nw.t.Fatalf("node %d applied (%d,%d) at %d; another node applied (%d,%d)", id, e.Index, e.Term, e.Index, o.Index, o.Term)
			}
			nw.appliedAt[e.Index] = e
		}
		if nw.discardApplied {
			s.applied = append(s.applied[:0], e)
		} else {
			s.applied = append(s.applied, e)
		}
	}
}

// handle processes one Ready of id, if any: persist, queue its messages,
// advance. It reports whether there was one.
func (nw *network) handle(id domain.NodeID) bool {
	r := nw.nodes[id]
	if nw.finishReady(id) {
		return true
	}
	if nw.down[id] || !r.HasReady() {
		return false
	}
	rd := r.Ready()
	if nw.onReady != nil {
		nw.onReady(id, rd)
	}
	nw.persist(id, rd)
	nw.send(rd.Messages...)
	nw.send(rd.MessagesAfterSync...)
	r.Advance(rd)
	return true
}

// takeReady takes id's Ready and sends its Messages at once, as a driver
// may, leaving the rest pending until finishReady.
func (nw *network) takeReady(id domain.NodeID) bool {
	r := nw.nodes[id]
	if nw.down[id] || nw.pending[id] != nil || !r.HasReady() {
		return false
	}
	rd := r.Ready()
	if nw.onReady != nil {
		nw.onReady(id, rd)
	}
	nw.send(rd.Messages...)
	if nw.pending == nil {
		nw.pending = map[domain.NodeID]*Ready{}
	}
	nw.pending[id] = &rd
	return true
}

// finishReady persists id's pending Ready, sends what waited for the
// sync, and advances.
func (nw *network) finishReady(id domain.NodeID) bool {
	rd := nw.pending[id]
	if nw.down[id] || rd == nil {
		return false
	}
	delete(nw.pending, id)
	nw.persist(id, *rd)
	nw.send(rd.MessagesAfterSync...)
	nw.nodes[id].Advance(*rd)
	return true
}

func (nw *network) send(msgs ...domain.Message) {
	for _, m := range msgs {
		if nw.cut[[2]domain.NodeID{m.From, m.To}] || nw.down[m.To] || nw.down[m.From] || nw.drop != nil && nw.drop(m) {
			nw.lost(m)
			continue
		}
		if m.Type == domain.MsgSnap && m.Snapshot.Data == nil {
			// The driver fills in the state machine image.
			snap := *m.Snapshot
			snap.Data = []byte("image")
			m.Snapshot = &snap
		}
		nw.queue = append(nw.queue, m)
	}
}

// deliverAll steps every queued message (not those it produces).
func (nw *network) deliverAll() int {
	q := nw.queue
	nw.queue = nil
	for _, m := range q {
		nw.deliver(m)
	}
	return len(q)
}

// deliver steps m into its receiver, unless the link or the node is down.
// Like a driver, it reports the fate of a snapshot to its sender.
func (nw *network) deliver(m domain.Message) {
	if nw.down[m.To] || nw.cut[[2]domain.NodeID{m.From, m.To}] {
		nw.lost(m)
		return
	}
	if err := nw.nodes[m.To].Step(m); err != nil {
		nw.t.Fatalf("step %v: %v", m, err)
	}
	if m.Type == domain.MsgSnap && !nw.down[m.From] {
		nw.nodes[m.From].ReportSnapshot(m.To, true)
	}
}

// lost reports a lost snapshot to its sender, as a driver would.
func (nw *network) lost(m domain.Message) {
	if m.Type == domain.MsgSnap && !nw.down[m.From] {
		nw.nodes[m.From].ReportSnapshot(m.To, false)
	}
}

// stabilize handles Readies and delivers messages until nothing moves.
func (nw *network) stabilize() {
	nw.t.Helper()
	for i := 0; ; i++ {
		if i > 10000 {
			nw.t.Fatalf("network did not stabilize")
		}
		moved := false
		for _, id := range nw.ids {
			for nw.handle(id) {
				moved = true
			}
		}
		if nw.deliverAll() > 0 {
			moved = true
		}
		if !moved {
			return
		}
	}
}

// isolate cuts every link to and from id.
func (nw *network) isolate(id domain.NodeID) {
	for _, o := range nw.ids {
		if o != id {
			nw.cut[[2]domain.NodeID{id, o}] = true
			nw.cut[[2]domain.NodeID{o, id}] = true
		}
	}
}

func (nw *network) heal() { nw.cut = map[[2]domain.NodeID]bool{} }

// campaign makes id campaign at once and runs the network until stable.
func (nw *network) campaign(id domain.NodeID) {
	nw.t.Helper()
	nw.nodes[id].campaign(false)
	nw.stabilize()
}

// elect makes id the leader of a stable network, or fails.
func (nw *network) elect(id domain.NodeID) *Raft {
	nw.t.Helper()
	nw.campaign(id)
	r := nw.nodes[id]
	if r.role != Leader {
		nw.t.Fatalf("node %d is %v after campaigning, want leader", id, r.role)
	}
	return r
}

// tickAll ticks every live node n times, stabilizing after each tick.
func (nw *network) tickAll(n int) {
	for range n {
		for _, id := range nw.ids {
			if !nw.down[id] {
				nw.nodes[id].Tick()
			}
		}
		nw.stabilize()
	}
}

// crash drops id's volatile state and whatever it had not persisted.
func (nw *network) crash(id domain.NodeID) {
	nw.down[id] = true
	delete(nw.pending, id)
}

// restart starts id again from its store.
func (nw *network) restart(id domain.NodeID) *Raft {
	nw.t.Helper()
	s := nw.stores[id]
	delete(nw.down, id)
	// The state machine restarts from the snapshot point and replays.
	return nw.add(nw.cfgs[id], s.state())
}

// checkLogs fails when two nodes applied different entries at one index.
func (nw *network) checkApplied() {
	nw.t.Helper()
	at := map[domain.Index]domain.Entry{}
	for _, id := range nw.ids {
		for _, e := range nw.stores[id].applied {
			if string(e.Data) == "snapshot" {
				continue
			}
			if o, ok := at[e.Index]; ok && (o.Term != e.Term || string(o.Data) != string(e.Data)) {
				nw.t.Fatalf("node %d applied %+v at %d, another node %+v", id, e, e.Index, o)
			}
			at[e.Index] = e
		}
	}
}

// leader returns the unique leader of the highest term, or None.
func (nw *network) leader() domain.NodeID {
	var best domain.NodeID
	var term domain.Term
	for _, id := range nw.ids {
		r := nw.nodes[id]
		if !nw.down[id] && r.role == Leader && r.term >= term {
			best, term = id, r.term
		}
	}
	return best
}

var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}

func diffReady(t testing.TB, want, got Ready) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Fatalf("Ready (-want +got):\n%s", d)
	}
}

func msgTypes(msgs []domain.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, fmt.Sprintf("%v %d->%d", m.Type, m.From, m.To))
	}
	return out
}

// readyOf takes id's Ready, persists it, advances, and returns it (without
// queueing its messages).
func readyOf(t testing.TB, r *Raft) Ready {
	t.Helper()
	if !r.HasReady() {
		return Ready{}
	}
	rd := r.Ready()
	r.Advance(rd)
	return rd
}

func mustStep(t testing.TB, r *Raft, m domain.Message) {
	t.Helper()
	if err := r.Step(m); err != nil {
		t.Fatalf("Step(%v): %v", m, err)
	}
}

func ents(termsFrom domain.Index, terms ...domain.Term) []domain.Entry {
	out := make([]domain.Entry, len(terms))
	for i, t := range terms {
		out[i] = domain.Entry{Index: termsFrom + domain.Index(i), Term: t, Data: []byte(fmt.Sprintf("e%d.%d", termsFrom+domain.Index(i), t))}
	}
	return out
}
