package consensus

import (
	"strings"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

func leaseConfig(c *Config) {
	c.ReadMode = LeaseMode
	c.LeaseDriftTicks = 3
}

func TestLeaseConfig(t *testing.T) {
	c := testConfig(1, ids(3))
	c.EnsureDefaults()
	if c.ReadMode != ReadIndexMode || c.LeaseDriftTicks != c.ElectionTicks/2 {
		t.Fatalf("defaults: mode %v, drift %d; want readindex, %d", c.ReadMode, c.LeaseDriftTicks, c.ElectionTicks/2)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" for valid
	}{
		{"lease", func(c *Config) { c.ReadMode = LeaseMode }, ""},
		{"lease without check quorum", func(c *Config) { c.ReadMode = LeaseMode; c.DisableCheckQuorum = true }, "needs CheckQuorum"},
		{"readindex without check quorum", func(c *Config) { c.DisableCheckQuorum = true }, ""},
		{"drift too large", func(c *Config) { c.ReadMode = LeaseMode; c.LeaseDriftTicks = 10 }, "LeaseDriftTicks 10"},
		{"drift negative", func(c *Config) { c.ReadMode = LeaseMode; c.LeaseDriftTicks = -1 }, "LeaseDriftTicks -1"},
		{"drift largest", func(c *Config) { c.ReadMode = LeaseMode; c.LeaseDriftTicks = 9 }, ""},
		{"unknown mode", func(c *Config) { c.ReadMode = 7 }, "unknown ReadMode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(1, ids(3))
			tc.edit(&c)
			c.EnsureDefaults()
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want an error with %q", err, tc.want)
			}
		})
	}
	for s, want := range map[string]ReadMode{"readindex": ReadIndexMode, "lease": LeaseMode} {
		if m, err := ParseReadMode(s); err != nil || m != want || m.String() != s {
			t.Fatalf("ParseReadMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseReadMode("Lease"); err == nil {
		t.Fatal("ParseReadMode accepted Lease")
	}
}

// electLease elects node 1 of a lease-mode network: nodes refuse votes for
// an election timeout after they start, so everyone first counts one.
func electLease(t *testing.T, nw *network) *Raft {
	t.Helper()
	for _, id := range nw.ids {
		r := nw.node(id)
		r.ticks = uint64(r.cfg.ElectionTicks)
	}
	l := nw.elect(1)
	if !l.committedInTerm() {
		t.Fatal("blank entry not committed")
	}
	return l
}

// leaseRead asks r for a read and reports whether it was answered at once
// (no heartbeat round), draining what it produced.
func leaseRead(t *testing.T, r *Raft) bool {
	t.Helper()
	readyOf(t, r) // what earlier reads produced
	if err := r.ReadIndex([]byte("lr")); err != nil {
		t.Fatal(err)
	}
	rd := readyOf(t, r)
	for _, m := range rd.Messages {
		if m.Type == domain.MsgHeartbeat {
			return false
		}
	}
	return len(rd.ReadStates) == 1
}

// heartbeatAcks ticks the leader once and returns the acknowledgements its
// followers would send for the heartbeats of that tick.
func heartbeatAcks(t *testing.T, nw *network, l *Raft) []domain.Message {
	t.Helper()
	l.Tick()
	var acks []domain.Message
	for _, m := range readyOf(t, l).Messages {
		if m.Type != domain.MsgHeartbeat {
			continue
		}
		mustStep(t, nw.node(m.To), m)
		for _, resp := range readyOf(t, nw.node(m.To)).Messages {
			if resp.Type == domain.MsgHeartbeatResp {
				acks = append(acks, resp)
			}
		}
	}
	return acks
}

// TestLeaseStepByStep: the first read of a new leader takes a heartbeat
// round; a quorum's acknowledgement of a heartbeat sent at tick t answers
// reads at once until tick t + ElectionTicks - LeaseDriftTicks, and no
// longer.
func TestLeaseStepByStep(t *testing.T) {
	nw := newNetwork(t, 3, leaseConfig)
	l := electLease(t, nw)
	if leaseRead(t, l) {
		t.Fatal("lease read before any heartbeat was acknowledged")
	}
	sentAt := l.ticks + 1
	acks := heartbeatAcks(t, nw, l)
	if leaseRead(t, l) {
		t.Fatal("lease read before the acknowledgements arrived")
	}
	// One acknowledgement and the leader's own make a quorum of three.
	mustStep(t, l, acks[0])
	if !leaseRead(t, l) {
		t.Fatal("no lease read after a quorum acknowledged")
	}
	lease := uint64(l.cfg.ElectionTicks - l.cfg.LeaseDriftTicks)
	for l.ticks+1 < sentAt+lease {
		l.Tick()
		readyOf(t, l) // heartbeats lost
		if !leaseRead(t, l) {
			t.Fatalf("tick %d: lease ended before %d", l.ticks, sentAt+lease)
		}
	}
	l.Tick()
	if leaseRead(t, l) {
		t.Fatalf("tick %d: lease read at its end (sent at %d, lease %d ticks)", l.ticks, sentAt, lease)
	}
}

// TestLeaseCountsFromSend: an acknowledgement that arrives late extends
// the lease from when its heartbeat was sent, not from its arrival: the
// followers started counting when they received the heartbeat.
func TestLeaseCountsFromSend(t *testing.T) {
	nw := newNetwork(t, 3, leaseConfig)
	l := electLease(t, nw)
	sentAt := l.ticks + 1
	acks := heartbeatAcks(t, nw, l)
	lease := uint64(l.cfg.ElectionTicks - l.cfg.LeaseDriftTicks)
	// The acknowledgements are held up until the last tick of the lease
	// they give.
	for l.ticks+1 < sentAt+lease {
		l.Tick()
		readyOf(t, l)
	}
	for _, m := range acks {
		mustStep(t, l, m)
	}
	if !leaseRead(t, l) {
		t.Fatal("no lease read within the lease")
	}
	l.Tick()
	if leaseRead(t, l) {
		t.Fatalf("lease read at tick %d: the lease counted from the acknowledgement's arrival, not from the send at %d", l.ticks, sentAt)
	}
}

// TestLeaseWaitsForCommitInTerm: acknowledged heartbeats give no lease read
// until the leader commits an entry of its term; until then the read waits.
func TestLeaseWaitsForCommitInTerm(t *testing.T) {
	nw := newNetwork(t, 3, leaseConfig)
	for _, id := range nw.ids {
		nw.node(id).ticks = 10
	}
	nw.drop = func(m domain.Message) bool { return m.Type == domain.MsgAppResp }
	l := nw.elect(1)
	if l.committedInTerm() {
		t.Fatal("blank committed without acknowledgements")
	}
	for _, m := range heartbeatAcks(t, nw, l) {
		mustStep(t, l, m)
	}
	if l.reads.leaseUntil == 0 {
		t.Fatal("acknowledgements gave no lease")
	}
	if leaseRead(t, l) {
		t.Fatal("lease read before the leader committed in its term")
	}
	if n := len(l.reads.queued); n != 1 {
		t.Fatalf("%d reads queued, want 1", n)
	}
}

// TestLeaseEndsOnTransfer: a transfer ends the lease at once; once a
// MsgTimeoutNow went out, whose campaign ignores the followers' lease, no
// lease comes back in the term, even if the transfer is abandoned.
func TestLeaseEndsOnTransfer(t *testing.T) {
	t.Run("timeout-now sent", func(t *testing.T) {
		nw := newNetwork(t, 3, leaseConfig)
		l := electLease(t, nw)
		for _, m := range heartbeatAcks(t, nw, l) {
			mustStep(t, l, m)
		}
		if !leaseRead(t, l) {
			t.Fatal("no lease read")
		}
		if err := l.TransferLeadership(3); err != nil {
			t.Fatal(err)
		}
		rd := readyOf(t, l)
		if len(rd.Messages) != 1 || rd.Messages[0].Type != domain.MsgTimeoutNow {
			t.Fatalf("transfer to a caught-up follower sent %v, want MsgTimeoutNow", msgTypes(rd.Messages))
		}
		if leaseRead(t, l) {
			t.Fatal("lease read after MsgTimeoutNow went out")
		}
		// The MsgTimeoutNow is lost; the transfer is abandoned after an
		// election timeout, while the followers keep acknowledging.
		for range l.cfg.ElectionTicks + 1 {
			for _, m := range heartbeatAcks(t, nw, l) {
				mustStep(t, l, m)
			}
		}
		if l.role != Leader || l.leadTransferee != domain.None {
			t.Fatalf("node 1 is %v transferring to %d, want leader with the transfer abandoned", l.role, l.leadTransferee)
		}
		if leaseRead(t, l) {
			t.Fatal("lease read in the term a MsgTimeoutNow went out in")
		}
	})
	t.Run("target behind", func(t *testing.T) {
		nw := newNetwork(t, 3, leaseConfig)
		l := electLease(t, nw)
		nw.isolate(3)
		l.Propose([]byte("x"))
		nw.stabilize()
		for _, m := range heartbeatAcks(t, nw, l) {
			if m.From == 2 {
				mustStep(t, l, m)
			}
		}
		if !leaseRead(t, l) {
			t.Fatal("no lease read")
		}
		if err := l.TransferLeadership(3); err != nil {
			t.Fatal(err)
		}
		if leaseRead(t, l) {
			t.Fatal("lease read during a transfer")
		}
		readyOf(t, l) // the append to 3 is lost
		for range l.cfg.ElectionTicks + 1 {
			for _, m := range heartbeatAcks(t, nw, l) {
				if m.From == 2 {
					mustStep(t, l, m)
				}
			}
		}
		if l.leadTransferee != domain.None {
			t.Fatal("transfer not abandoned")
		}
		// No MsgTimeoutNow ever went out: acknowledgements after the
		// transfer give a lease again.
		if !leaseRead(t, l) {
			t.Fatal("no lease read after an abandoned transfer that sent no MsgTimeoutNow")
		}
	})
}

// TestLeaseRestartedNodeRefusesVotes: a node in LeaseMode ignores vote
// requests (not a transfer's) for an election timeout after it starts: it
// may have acknowledged a heartbeat just before it went down.
func TestLeaseRestartedNodeRefusesVotes(t *testing.T) {
	for _, mode := range []ReadMode{ReadIndexMode, LeaseMode} {
		t.Run(mode.String(), func(t *testing.T) {
			c := testConfig(2, ids(3))
			c.ReadMode = mode
			r, err := New(c, State{Vote: domain.Vote{Term: 3}})
			if err != nil {
				t.Fatal(err)
			}
			vote := domain.Message{Type: domain.MsgVote, From: 3, To: 2, Term: 4}
			for tick := range c.ElectionTicks + 1 {
				mustStep(t, r, vote)
				rd := readyOf(t, r)
				granted := len(rd.MessagesAfterSync) == 1 && !rd.MessagesAfterSync[0].Reject
				wantGrant := mode == ReadIndexMode || tick >= c.ElectionTicks
				if granted != wantGrant {
					t.Fatalf("after %d ticks: vote granted %v, want %v (%+v)", tick, granted, wantGrant, rd)
				}
				if granted {
					break
				}
				r.Tick()
			}
			// A transfer's campaign is never refused.
			r2, _ := New(c, State{Vote: domain.Vote{Term: 3}})
			mustStep(t, r2, domain.Message{Type: domain.MsgVote, From: 3, To: 2, Term: 4, Context: transferContext})
			if rd := readyOf(t, r2); len(rd.MessagesAfterSync) != 1 || rd.MessagesAfterSync[0].Reject {
				t.Fatalf("transfer vote right after start: %+v, want granted", rd)
			}
		})
	}
}

// TestLeaseSingleNode: a lone voter answers at once in either mode.
func TestLeaseSingleNode(t *testing.T) {
	nw := newNetwork(t, 1, leaseConfig)
	l := electLease(t, nw)
	nw.stabilize()
	if !leaseRead(t, l) {
		t.Fatal("single node: read not answered at once")
	}
}
