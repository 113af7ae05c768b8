package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// memberNode is fakeNode with a membership, the leader's progress view
// and ProposeMembership.
type memberNode struct {
	*fakeNode
	mmu      sync.Mutex
	m        domain.Membership
	progress map[domain.NodeID]consensus.Progress
	last     domain.Index
	failConf error // the next ProposeMembership fails with it
}

func newMemberNode() *memberNode {
	return &memberNode{fakeNode: newFakeNode(), m: domain.Membership{Voters: []domain.NodeID{1, 2, 3}},
		progress: map[domain.NodeID]consensus.Progress{}, last: 1000}
}

func (n *memberNode) Status() consensus.Status {
	st := n.fakeNode.Status()
	n.mmu.Lock()
	defer n.mmu.Unlock()
	st.Membership = n.m.Clone()
	st.LastIndex = n.last
	st.Progress = map[domain.NodeID]consensus.Progress{}
	for id, p := range n.progress {
		st.Progress[id] = p
	}
	return st
}

func (n *memberNode) ProposeMembership(_ context.Context, m domain.Membership) error {
	n.mmu.Lock()
	defer n.mmu.Unlock()
	if err := n.failConf; err != nil {
		n.failConf = nil
		return err
	}
	n.m = m.Clone()
	return nil
}

func (n *memberNode) setProgress(id domain.NodeID, match domain.Index, st consensus.ProgressState) {
	n.mmu.Lock()
	defer n.mmu.Unlock()
	n.progress[id] = consensus.Progress{Match: match, State: st, RecentActive: true}
}

func (n *memberNode) membership() domain.Membership {
	n.mmu.Lock()
	defer n.mmu.Unlock()
	return n.m.Clone()
}

type fakePeers struct {
	mu  sync.Mutex
	set map[domain.NodeID]string
	rm  []domain.NodeID
}

func (p *fakePeers) SetPeer(id domain.NodeID, addr string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.set[id] = addr
	return nil
}

func (p *fakePeers) RemovePeer(id domain.NodeID) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.set, id)
	p.rm = append(p.rm, id)
	return nil
}

func (p *fakePeers) get(id domain.NodeID) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set[id]
}

type fakeAdminRelay struct {
	addr string
	args []string
}

func (r *fakeAdminRelay) Command(_ context.Context, addr string, args ...[]byte) (domain.Reply, error) {
	r.addr = addr
	for _, a := range args {
		r.args = append(r.args, string(a))
	}
	return domain.OK, nil
}

type membersFixture struct {
	n     *memberNode
	s     *Service
	m     *Members
	peers *fakePeers
	relay *fakeAdminRelay
}

func newMembersFixture(t *testing.T) *membersFixture {
	t.Helper()
	n := newMemberNode()
	clients := map[domain.NodeID]string{1: "h:6001", 2: "h:6002", 3: "h:6003"}
	s := newService(t, n, n.kv, Config{ClientAddrs: clients})
	f := &membersFixture{n: n, s: s, peers: &fakePeers{set: map[domain.NodeID]string{}}, relay: &fakeAdminRelay{}}
	f.m = NewMembers(s, n, MembersConfig{Peers: f.peers, Relay: f.relay, ClusterID: "uuid-1",
		StaticPeers: map[domain.NodeID]string{1: "h:7001", 2: "h:7002", 3: "h:7003"}, Interval: time.Hour})
	t.Cleanup(f.m.Close)
	return f
}

// do runs SESHAT.MEMBER args and returns the reply's text.
func (f *membersFixture) do(args ...string) string {
	var b [][]byte
	for _, a := range args {
		b = append(b, []byte(a))
	}
	r := f.m.Do(context.Background(), b, false)
	if r.IsError() {
		return r.Str
	}
	return r.String()
}

func TestMembersAddWritesTheBookThenALearner(t *testing.T) {
	f := newMembersFixture(t)
	if got := f.do("ADD", "4", "h:7004", "h:6004"); got != "OK" {
		t.Fatalf("ADD = %s", got)
	}
	if m := f.n.membership(); !m.IsLearner(4) || m.IsVoter(4) {
		t.Fatalf("membership %v, want 4 a learner", m)
	}
	e, ok := f.m.Book().Get(4)
	if !ok || e.Peer != "h:7004" || e.Client != "h:6004" || !e.AutoPromote {
		t.Fatalf("book entry of 4: %+v %v", e, ok)
	}
	if a := f.peers.get(4); a != "h:7004" {
		t.Fatalf("transport peer 4 = %q", a)
	}
	if a, ok := f.s.clientAddr(4); !ok || a != "h:6004" {
		t.Fatalf("client address of 4 = %q, %v", a, ok)
	}
	// ADD again with the same addresses is a no-op; with others, refused.
	if got := f.do("ADD", "4", "h:7004", "h:6004"); got != "OK" {
		t.Fatalf("second ADD = %s", got)
	}
	if got := f.do("ADD", "4", "h:9", "h:9"); !strings.Contains(got, "already a member") {
		t.Fatalf("ADD with other addresses = %s", got)
	}
	if got := f.do("ADD", "5", "h:7004", "h:6005"); !strings.Contains(got, "node 4's") {
		t.Fatalf("ADD on a member's address = %s", got)
	}
}

// The leader promotes a learner once it is active, replicating, and within
// PromoteLag of the last index, and not before.
func TestMembersAutoPromoteOnlyWhenCaughtUp(t *testing.T) {
	f := newMembersFixture(t)
	if got := f.do("ADD", "4", "h:7004", "h:6004"); got != "OK" {
		t.Fatal(got)
	}
	ctx := context.Background()
	f.n.setProgress(4, 10, consensus.ProgressSnapshot)
	f.m.lead(ctx)
	if f.n.membership().IsVoter(4) {
		t.Fatal("promoted while receiving a snapshot")
	}
	if got := f.do("PROMOTE", "4"); !strings.HasPrefix(got, "TRYAGAIN") || !strings.Contains(got, "behind") {
		t.Fatalf("PROMOTE of a lagging learner = %s", got)
	}
	f.n.setProgress(4, 1000-DefaultPromoteLag-1, consensus.ProgressReplicate)
	f.m.lead(ctx)
	if f.n.membership().IsVoter(4) {
		t.Fatal("promoted while more than PromoteLag behind")
	}
	f.n.setProgress(4, 1000-DefaultPromoteLag, consensus.ProgressReplicate)
	f.m.lead(ctx)
	if m := f.n.membership(); !m.IsVoter(4) || m.IsLearner(4) {
		t.Fatalf("membership %v, want 4 promoted", m)
	}
	// DEMOTE makes it a learner that stays one.
	if got := f.do("DEMOTE", "4"); got != "OK" {
		t.Fatalf("DEMOTE = %s", got)
	}
	f.m.lead(ctx)
	if m := f.n.membership(); !m.IsLearner(4) {
		t.Fatalf("membership %v after DEMOTE, want 4 a learner", m)
	}
	// PROMOTE of a caught-up learner promotes it at once.
	if got := f.do("PROMOTE", "4"); got != "OK" {
		t.Fatalf("PROMOTE = %s", got)
	}
	if !f.n.membership().IsVoter(4) {
		t.Fatal("PROMOTE did not promote")
	}
}

func TestMembersRemoveRetiresTheID(t *testing.T) {
	f := newMembersFixture(t)
	if got := f.do("ADD", "4", "h:7004", "h:6004"); got != "OK" {
		t.Fatal(got)
	}
	if got := f.do("REMOVE", "4"); got != "OK" {
		t.Fatalf("REMOVE = %s", got)
	}
	if f.n.membership().Contains(4) || !f.m.Book().IsRetired(4) {
		t.Fatalf("after REMOVE: membership %v, book %+v", f.n.membership(), f.m.Book())
	}
	if f.peers.get(4) != "" || !slices.Contains(f.peers.rm, 4) {
		t.Fatalf("transport still knows 4: %v", f.peers.set)
	}
	for _, sub := range []string{"ADD", "JOIN"} {
		if got := f.do(sub, "4", "h:7004", "h:6004"); !strings.Contains(got, "removed") {
			t.Fatalf("%s of a retired id = %s", sub, got)
		}
	}
	// REPLACE: the old id out and retired, the new one a learner.
	if got := f.do("REPLACE", "3", "5", "h:7005", "h:6005"); got != "OK" {
		t.Fatalf("REPLACE = %s", got)
	}
	m := f.n.membership()
	if m.Contains(3) || !m.IsLearner(5) || !f.m.Book().IsRetired(3) {
		t.Fatalf("after REPLACE: membership %v, book %+v", m, f.m.Book())
	}
	if got := f.do("REPLACE", "5", "5", "h:1", "h:2"); !strings.Contains(got, "new id") {
		t.Fatalf("REPLACE with the same id = %s", got)
	}
}

func TestMembersErrors(t *testing.T) {
	f := newMembersFixture(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"REMOVE", "9"}, "ERR unknown node 9"},
		{[]string{"PROMOTE", "9"}, "ERR unknown node 9"},
		{[]string{"DEMOTE", "9"}, "ERR unknown node 9"},
		{[]string{"REMOVE", "x"}, "ERR invalid node id 'x'"},
		{[]string{"ADD", "4"}, "ERR wrong number of arguments for 'seshat.member|add' command"},
		{[]string{"NOPE"}, "ERR unknown subcommand 'NOPE'"},
	} {
		if got := f.do(c.args...); !strings.HasPrefix(got, c.want) {
			t.Errorf("%v = %q, want %q...", c.args, got, c.want)
		}
	}
	// A change in flight: TRYAGAIN.
	f.n.mmu.Lock()
	f.n.failConf = fmt.Errorf("change at 7 not committed yet: %w", domain.ErrProposalDropped)
	f.n.mmu.Unlock()
	if got := f.do("ADD", "4", "h:7004", "h:6004"); !strings.HasPrefix(got, "TRYAGAIN") {
		t.Fatalf("ADD with a change in flight = %q", got)
	}
}

// A follower relays to the leader's client address, unless the command was
// relayed to it (then TRYAGAIN: no relay loops).
func TestMembersFollowerRelays(t *testing.T) {
	f := newMembersFixture(t)
	f.n.mu.Lock()
	f.n.leader = 2
	f.n.mu.Unlock()
	if got := f.do("ADD", "4", "h:7004", "h:6004"); got != "OK" {
		t.Fatalf("relayed ADD = %s", got)
	}
	if f.relay.addr != "h:6002" || strings.Join(f.relay.args, " ") != "SESHAT.MEMBER ADD 4 h:7004 h:6004" {
		t.Fatalf("relayed %v to %s", f.relay.args, f.relay.addr)
	}
	r := f.m.Do(context.Background(), [][]byte{[]byte("REMOVE"), []byte("3")}, true)
	if !r.IsError() || !strings.HasPrefix(r.Str, "TRYAGAIN") {
		t.Fatalf("relayed REMOVE on a follower = %v", r)
	}
}

// The leader writes the book entries of the static members, and LIST and
// JOIN show every member with its addresses.
func TestMembersStaticSeedListAndJoin(t *testing.T) {
	f := newMembersFixture(t)
	f.m.lead(context.Background())
	for id := domain.NodeID(1); id <= 3; id++ {
		e, ok := f.m.Book().Get(id)
		if !ok || e.Peer != fmt.Sprintf("h:700%d", id) || e.Client != fmt.Sprintf("h:600%d", id) {
			t.Fatalf("book entry of %d: %+v %v", id, e, ok)
		}
	}
	f.n.setProgress(2, 990, consensus.ProgressReplicate)
	rows := f.m.List()
	if len(rows) != 3 || rows[0].Match != 1000 || rows[0].Lag != 0 || rows[1].Match != 990 || rows[1].Lag != 10 || rows[2].Match != -1 {
		t.Fatalf("rows %+v", rows)
	}
	r := f.m.Do(context.Background(), [][]byte{[]byte("JOIN"), []byte("4"), []byte("h:7004"), []byte("h:6004")}, false)
	if r.Kind != domain.ReplyArray || string(r.Array[0].Bulk) != "uuid-1" || len(r.Array[1].Array) != 4 {
		t.Fatalf("JOIN = %v", r)
	}
	last := r.Array[1].Array[3].Array
	if last[0].Int != 4 || string(last[1].Bulk) != "learner" || string(last[2].Bulk) != "h:7004" {
		t.Fatalf("JOIN's row of 4 = %v", last)
	}
}

// TestMembersRemovedNodeRefusesWrites: a node that sees itself retired in
// the book says so and takes no more writes (reads go on).
func TestMembersRemovedNodeRefusesWrites(t *testing.T) {
	f := newMembersFixture(t)
	// Another node removed node 1 (this one): the book it applies
	// retires it.
	if err := f.m.proposeBook(context.Background(), "retire", "1"); err != nil {
		t.Fatal(err)
	}
	f.m.reconcile()
	if !f.m.Book().IsRetired(1) {
		t.Fatalf("book %+v does not retire node 1", f.m.Book())
	}
	r := f.s.Do(context.Background(), []ports.Request{req("SET", "k", "v")}, ports.DoOptions{})
	if r[0].Err == nil || !strings.Contains(r[0].Err.Error(), "removed from the cluster") {
		t.Fatalf("SET on a removed node: %+v, want a refusal saying it was removed", r[0])
	}
}
