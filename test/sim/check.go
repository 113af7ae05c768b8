package main

import (
	"bytes"
	"fmt"
	"hash/fnv"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// checker holds what the invariants remember across a run.
type checker struct {
	// leaders maps each term to the node that led it (crashes included).
	leaders map[domain.Term]domain.NodeID
	// commitMax is the highest commit index seen on any node.
	commitMax domain.Index
	// applied[i] is the entry applied at index i by the first node that
	// applied it; applied[0] is unused. Entries are applied from the log,
	// and snapshots are made of applied state only, so the slice has no
	// holes: it is the committed prefix known anywhere.
	applied []appliedEntry
}

type appliedEntry struct {
	term   domain.Term
	typ    domain.EntryType
	data   uint64 // FNV-64a of Data
	by     domain.NodeID
	digest uint64 // state machine digest after this entry, if known
	hasDig bool
}

func (c *checker) init() {
	c.leaders = map[domain.Term]domain.NodeID{}
	c.applied = make([]appliedEntry, 1, 1024)
}

func hashData(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// committedThrough is the last index known committed anywhere.
func (c *checker) committedThrough() domain.Index { return domain.Index(len(c.applied) - 1) }

// recordLeader notes that id leads term; it reports the other leader of
// the term if there was one (election safety).
func (c *checker) recordLeader(term domain.Term, id domain.NodeID) (other domain.NodeID, fresh bool) {
	if prev, ok := c.leaders[term]; ok {
		if prev != id {
			return prev, false
		}
		return domain.None, false
	}
	c.leaders[term] = id
	return domain.None, true
}

// recordApplied checks an entry a node applies against what every node
// applied at that index (state machine safety) and records it.
func (c *checker) recordApplied(s *sim, n *node, e domain.Entry) {
	a := appliedEntry{term: e.Term, typ: e.Type, data: hashData(e.Data), by: n.id}
	fresh := int(e.Index) == len(c.applied)
	if c.add(e.Index, a) {
		if fresh && e.Type == domain.EntryMembership {
			s.membershipApplied(e)
		}
		return
	}
	if int(e.Index) >= len(c.applied) {
		s.fail("state-machine-safety", "n%d applies index %d, but index %d was applied nowhere",
			n.id, e.Index, c.committedThrough()+1)
		return
	}
	prev := c.applied[e.Index]
	s.fail("state-machine-safety", "index %d: n%d applied term %d %v data %x, n%d applied term %d %v data %x",
		e.Index, prev.by, prev.term, prev.typ, prev.data, n.id, e.Term, e.Type, a.data)
}

// add records an applied entry; it returns false if a different entry was
// applied at that index before, or if the index leaves a hole after the
// known prefix (which no node can do: see applied).
func (c *checker) add(i domain.Index, a appliedEntry) bool {
	if int(i) < len(c.applied) {
		p := c.applied[i]
		return p.term == a.term && p.typ == a.typ && p.data == a.data
	}
	if int(i) != len(c.applied) {
		// The caller reports this as apply-order; keep the slice dense.
		return false
	}
	c.applied = append(c.applied, a)
	return true
}

// checkDigest compares node n's state machine digest with the one recorded
// at the same applied index (by another node, or by n before a crash).
func (s *sim) checkDigest(n *node) {
	kv := n.disk.KV()
	meta, err := kv.Applied()
	if err != nil || meta.Index == 0 {
		return
	}
	if int(meta.Index) >= len(s.chk.applied) {
		s.fail("state-machine-safety", "n%d's state machine is at index %d, past every index applied anywhere (%d)",
			n.id, meta.Index, s.chk.committedThrough())
		return
	}
	d := kv.Digest()
	a := &s.chk.applied[meta.Index]
	if a.term != meta.Term {
		s.fail("state-machine-safety", "n%d's state machine is at %d/%d but n%d applied term %d there",
			n.id, meta.Index, meta.Term, a.by, a.term)
		return
	}
	if !a.hasDig {
		a.digest, a.hasDig = d, true
		return
	}
	if a.digest != d {
		s.fail("state-machine-safety", "n%d's state at index %d has digest %x, another replica's had %x", n.id, meta.Index, d, a.digest)
	}
}

// checkRole records a leader and checks election safety; a node that just
// became leader gets a leader completeness check at its next Ready.
func (s *sim) checkRole(n *node) {
	st := n.d.Status()
	wasTerm := n.term
	n.term = st.Term
	was := n.role
	n.role = st.Role
	if st.Commit > n.commit {
		n.commit = st.Commit
		// A leader's commit moved (it may have stepped down at once,
		// having committed its own removal).
		if st.Role == consensus.Leader || was == consensus.Leader && wasTerm == st.Term {
			s.checkCommit(n, st)
		}
		s.chk.commitMax = max(s.chk.commitMax, st.Commit)
		if s.viol != nil {
			return
		}
	}
	if st.Role != consensus.Leader {
		return
	}
	other, fresh := s.chk.recordLeader(st.Term, n.id)
	if other != domain.None {
		s.fail("election-safety", "term %d has two leaders: n%d and n%d", st.Term, other, n.id)
		return
	}
	if fresh || was != consensus.Leader {
		n.lcTerm, n.lcUpTo = st.Term, s.chk.committedThrough()
		s.tr.linef(s.now, s.step, "leader n%d term %d (committed through %d)", n.id, st.Term, n.lcUpTo)
		s.stats.elections++
		if s.rng.Float64() < s.plan.crashNewLeader {
			s.scheduleCrash(n, s.now+s.rng.Int64N(20*msec), true)
		}
		if s.rng.Float64() < s.plan.isolateLeader {
			// At once (its first entries go nowhere) or a little later
			// (some of its first acknowledgements arrive).
			d := int64(0)
			if s.rng.IntN(2) == 0 {
				d = s.rng.Int64N(20 * msec)
			}
			s.isolateSoon(n.id, s.now+d)
		}
		if msg := s.missingInMemory(n, st); msg != "" {
			s.fail("leader-completeness", "n%d leads term %d: %s", n.id, st.Term, msg)
		}
	}
}

// missingInMemory checks that a new leader's log (as its core holds it)
// has every entry known committed; entries it compacted count as present.
func (s *sim) missingInMemory(n *node, st consensus.Status) string {
	upTo := s.chk.committedThrough()
	if st.LastIndex < upTo {
		return fmt.Sprintf("its log ends at %d, before index %d, committed with term %d by n%d",
			st.LastIndex, upTo, s.chk.applied[upTo].term, s.chk.applied[upTo].by)
	}
	for i := st.FirstIndex; i <= upTo; i++ {
		t, err := n.d.Term(i)
		if err != nil {
			return fmt.Sprintf("term at %d: %v", i, err)
		}
		if a := s.chk.applied[i]; a.term != t {
			return fmt.Sprintf("its log has term %d at index %d, but n%d applied term %d there", t, i, a.by, a.term)
		}
	}
	return ""
}

// checkLeaderCompleteness checks that a new leader's stored log holds
// every entry that was known committed when it was elected. It runs when
// the first log job taken after the election is synced (the jobs taken
// before it completed before the election: a candidate's own vote counts
// only once its Ready is durable), and only if it still leads that term,
// so its log has not changed since the election except by appending.
func (s *sim) checkLeaderCompleteness(n *node) {
	term, upTo := n.lcTerm, n.lcUpTo
	n.lcTerm = 0
	st := n.d.Status()
	if st.Role != consensus.Leader || st.Term != term {
		return
	}
	if msg := missingCommitted(n.disk.Log(), s.chk.applied, upTo); msg != "" {
		s.fail("leader-completeness", "n%d leads term %d: %s", n.id, term, msg)
	}
}

// missingCommitted checks that log holds every committed entry through
// upTo (applied[i] is the entry committed at i); entries below the log's
// first index were compacted into a snapshot and count as present. It
// returns what is missing, or "".
func missingCommitted(log ports.LogStore, applied []appliedEntry, upTo domain.Index) string {
	first, err1 := log.FirstIndex()
	last, err2 := log.LastIndex()
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("log bounds: %v %v", err1, err2)
	}
	if last < upTo {
		return fmt.Sprintf("its log (%d,%d] ends before index %d, committed with term %d by n%d",
			first-1, last, upTo, applied[upTo].term, applied[upTo].by)
	}
	for i := first; i <= upTo; i++ {
		t, err := log.Term(i)
		if err != nil {
			return fmt.Sprintf("term at %d: %v", i, err)
		}
		if a := applied[i]; a.term != t {
			return fmt.Sprintf("its log has term %d at index %d, but n%d applied term %d there", t, i, a.by, a.term)
		}
	}
	return ""
}

// checkLogMatching compares node n's stored log, which just changed, with
// every other node's: where two logs hold an entry with the same index and
// term, they must be identical up to it.
func (s *sim) checkLogMatching(n *node) {
	n.logDirty = false
	if err := s.refreshLog(n); err != nil {
		s.fail("driver", "n%d: read log: %v", n.id, err)
		return
	}
	for _, id := range s.ids {
		o := s.nodes[id]
		if o == n {
			continue
		}
		if o.logDirty {
			o.logDirty = false
			if err := s.refreshLog(o); err != nil {
				s.fail("driver", "n%d: read log: %v", o.id, err)
				return
			}
		}
		if i, ok := logsMatch(n.logFirst, n.log, o.logFirst, o.log); !ok {
			a, b := n.log[i-n.logFirst], o.log[i-o.logFirst]
			s.fail("log-matching", "n%d and n%d share a later entry but differ at index %d: %d/%v/%x vs %d/%v/%x",
				n.id, o.id, i, a.Term, a.Type, hashData(a.Data), b.Term, b.Type, hashData(b.Data))
			return
		}
	}
}

func (s *sim) refreshLog(n *node) error {
	log := n.disk.Log()
	first, err := log.FirstIndex()
	if err != nil {
		return err
	}
	last, err := log.LastIndex()
	if err != nil {
		return err
	}
	n.logFirst, n.log = first, n.log[:0]
	if last >= first {
		n.log, err = log.Entries(first, last+1, 0)
	}
	return err
}

// logsMatch checks the log matching property on two logs, a starting at
// index af and b at bf: below the highest index where both hold an entry
// of the same term, they must hold identical entries. It returns the first
// index where they differ if they do not.
func logsMatch(af domain.Index, a []domain.Entry, bf domain.Index, b []domain.Entry) (domain.Index, bool) {
	lo := max(af, bf)
	hi := min(af+domain.Index(len(a)), bf+domain.Index(len(b))) // exclusive
	top := lo                                                   // one past the highest index where the terms agree
	for j := hi; j > lo; j-- {
		if a[j-1-af].Term == b[j-1-bf].Term {
			top = j
			break
		}
	}
	for i := lo; i < top; i++ {
		x, y := a[i-af], b[i-bf]
		if x.Term != y.Term || x.Type != y.Type || !bytes.Equal(x.Data, y.Data) {
			return i, false
		}
	}
	return 0, true
}
