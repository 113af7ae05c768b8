package resp

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

type fakeMembers struct {
	mu      sync.Mutex
	args    []string
	relayed bool
}

func (f *fakeMembers) Do(_ context.Context, args [][]byte, relayed bool) domain.Reply {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.args = nil
	for _, a := range args {
		f.args = append(f.args, string(a))
	}
	f.relayed = relayed
	return domain.OK
}

func (f *fakeMembers) List() []ports.MemberRow {
	return []ports.MemberRow{
		{ID: 1, Role: "voter", Peer: "h:11", Client: "h:1", Match: 10, Lag: 0},
		{ID: 2, Role: "voter", Peer: "h:12", Client: "h:2", Match: 9, Lag: 1},
		{ID: 4, Role: "learner", Peer: "h:14", Client: "h:4", Match: -1, Lag: -1},
	}
}

func TestMemberCommandInfoAndCluster(t *testing.T) {
	s := dial(t, serve(t, newFakeKV(), Options{}))
	s.expect("-ERR membership changes are not enabled on this node\r\n", "SESHAT.MEMBER", "LIST")

	m := &fakeMembers{}
	s = dial(t, serve(t, newFakeKV(), Options{Redirect: true, Members: m}))
	s.expect("-ERR wrong number of arguments for 'seshat.member' command\r\n", "SESHAT.MEMBER")
	s.expect("+OK\r\n", "seshat.member", "ADD", "4", "h:14", "h:4")
	if strings.Join(m.args, " ") != "ADD 4 h:14 h:4" || m.relayed {
		t.Fatalf("Members.Do got %v relayed=%v", m.args, m.relayed)
	}
	s.expect("+OK\r\n", "SESHAT.RELAYED")
	s.expect("+OK\r\n", "SESHAT.MEMBER", "REMOVE", "4")
	if !m.relayed {
		t.Fatal("a command on a relayed connection was not marked relayed")
	}

	info := s.do("INFO", "replication")
	for _, want := range []string{"member_1:role=voter,peer=h:11,client=h:1,match=10,lag=0", "member_4:role=learner,peer=h:14,client=h:4,match=-1,lag=-1"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO replication lacks %q:\n%s", want, info)
		}
	}
	leader, me := fmt.Sprintf("%040x", 1), fmt.Sprintf("%040x", 2)
	nodes := s.do("CLUSTER", "NODES")
	for _, want := range []string{
		leader + " h:1@10001 master - 0 0 3 connected 0-16383\n",
		me + " h:2@10002 myself,slave " + leader + " 0 0 3 connected\n",
		fmt.Sprintf("%040x", 4) + " h:4@10004 slave " + leader + " 0 0 3 connected\n",
	} {
		if !strings.Contains(nodes, want) {
			t.Errorf("CLUSTER NODES lacks %q:\n%s", want, nodes)
		}
	}
	if shards := s.do("CLUSTER", "SHARDS"); strings.Count(shards, "$7\r\nreplica\r\n") != 2 || !strings.Contains(shards, "unknown") {
		t.Errorf("CLUSTER SHARDS = %q", shards)
	}
	if docs := s.do("COMMAND", "DOCS", "SESHAT.MEMBER"); !strings.Contains(docs, "replace") || !strings.Contains(docs, "old-id") {
		t.Errorf("COMMAND DOCS SESHAT.MEMBER = %q", docs)
	}
}
