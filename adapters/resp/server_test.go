package resp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// fakeKV answers from a map and records each batch it gets.
type fakeKV struct {
	mu      sync.Mutex
	data    map[string]string
	batches [][]ports.Request
	opts    []ports.DoOptions
	fail    error
}

func (f *fakeKV) Do(_ context.Context, reqs []ports.Request, opts ports.DoOptions) []ports.Reply {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, reqs)
	f.opts = append(f.opts, opts)
	out := make([]ports.Reply, len(reqs))
	for i, r := range reqs {
		if f.fail != nil {
			out[i] = ports.ErrReply(f.fail)
			continue
		}
		switch r.Kind {
		case ports.ReqSet, ports.ReqMSet:
			for k, key := range r.Keys {
				f.data[string(key)] = string(r.Values[k])
			}
			out[i] = ports.Reply{Kind: ports.ReplyOK}
		case ports.ReqGet:
			if v, ok := f.data[string(r.Keys[0])]; ok {
				out[i] = ports.Reply{Kind: ports.ReplyBulk, Value: []byte(v)}
			} else {
				out[i] = ports.Reply{Kind: ports.ReplyNil}
			}
		case ports.ReqDel:
			n := 0
			for _, k := range r.Keys {
				if _, ok := f.data[string(k)]; ok {
					delete(f.data, string(k))
					n++
				}
			}
			out[i] = ports.Reply{Kind: ports.ReplyInt, Int: int64(n)}
		default:
			out[i] = ports.ErrReply(fmt.Errorf("fake: %v", r.Kind))
		}
	}
	return out
}

func (f *fakeKV) Status() ports.KVStatus {
	return ports.KVStatus{ID: 2, Role: "follower", Leader: 1, LeaderAddr: "h:1", Term: 3, Commit: 10, Applied: 9,
		Membership: domain.Membership{Voters: []domain.NodeID{1, 2, 3}}}
}

func serve(t *testing.T, kv ports.KV, opts Options) string {
	t.Helper()
	s, err := New(kv, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// exchange writes raw in one write and reads n replies, returned raw.
func exchange(t *testing.T, addr, raw string, n int) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var out []string
	for range n {
		out = append(out, readRaw(t, r))
	}
	return out
}

// readRaw reads one reply and returns its bytes.
func readRaw(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	switch line[0] {
	case '$':
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		if n < 0 {
			return line
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatal(err)
		}
		return line + string(b)
	case '*':
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		for range n {
			line += readRaw(t, r)
		}
	}
	return line
}

func cmd(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// A pipelined burst reaches the KV port as one batch and is answered in
// order, local commands in their place.
func TestPipelineIsOneBatchAnsweredInOrder(t *testing.T) {
	kv := &fakeKV{data: map[string]string{}}
	addr := serve(t, kv, Options{})
	raw := cmd("SET", "a", "1") + cmd("PING") + cmd("GET", "a") + cmd("nope") + cmd("DEL", "a", "b") + cmd("ECHO", "x") + cmd("GET", "a")
	got := exchange(t, addr, raw, 7)
	want := []string{"+OK\r\n", "+PONG\r\n", "$1\r\n1\r\n", "-ERR unknown command 'nope', with args beginning with: \r\n", ":1\r\n", "$1\r\nx\r\n", "$-1\r\n"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("replies (-want +got):\n%s", d)
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if len(kv.batches) != 1 || len(kv.batches[0]) != 4 {
		t.Fatalf("batches %v: want one of 4 requests", kv.batches)
	}
}

func TestCommandReplies(t *testing.T) {
	kv := &fakeKV{data: map[string]string{}}
	addr := serve(t, kv, Options{MaxValueBytes: 4})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get"}, "-ERR wrong number of arguments for 'get' command\r\n"},
		{[]string{"Foo", "a", "b"}, "-ERR unknown command 'Foo', with args beginning with: 'a' 'b' \r\n"},
		{[]string{"set", "k", "toolong"}, "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"},
		{[]string{"set", "k", "v", "EX", "10"}, "-ERR SET option EX is not yet supported by seshat\r\n"},
		{[]string{"set", "k", "v", "PX", "-1"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"set", "k", "v", "EX", "1", "PX", "1"}, "-ERR syntax error\r\n"},
		{[]string{"set", "k", "v", "XX"}, "-ERR SET option XX is not yet supported by seshat\r\n"},
		{[]string{"set", "k", "v", "KEEPTTL"}, "+OK\r\n"},
		{[]string{"mset", "a"}, "-ERR wrong number of arguments for 'mset' command\r\n"},
		{[]string{"ping", "a", "b"}, "-ERR wrong number of arguments for 'ping' command\r\n"},
		{[]string{"hello", "3"}, "-NOPROTO unsupported protocol version\r\n"},
		{[]string{"select", "0"}, "+OK\r\n"},
		{[]string{"select", "x"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"select", "2"}, "-ERR DB index is out of range\r\n"},
		{[]string{"client", "getname"}, "$-1\r\n"},
		{[]string{"client", "setname", "a b"}, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"client", "setname"}, "-ERR wrong number of arguments for 'client|setname' command\r\n"},
		{[]string{"client", "setinfo", "lib-name", "x"}, "+OK\r\n"},
		{[]string{"client", "kill"}, "-ERR unknown subcommand 'kill'. Try CLIENT HELP.\r\n"},
		{[]string{"command", "docs"}, "*0\r\n"},
		{[]string{"config", "get", "save"}, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"},
		{[]string{"config", "get", "appendonly", "nosuch"}, "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"},
	} {
		got := exchange(t, addr, cmd(c.args...), 1)[0]
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.args, got, c.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&ports.RedirectError{Leader: 3, Addr: "10.0.0.3:7379"}, "MOVED 0 10.0.0.3:7379"},
		{fmt.Errorf("x: %w", domain.ErrNoLeader), "CLUSTERDOWN No raft leader"},
		{fmt.Errorf("x: %w", domain.ErrDiskFull), "MISCONF disk full on the leader, writes refused until space returns: x: seshat: disk full"},
		{&ports.RemoteError{Text: "TIMEOUT far away"}, "TIMEOUT far away"},
		{fmt.Errorf("x\r\ny: %w", domain.ErrLeadershipLost), "TIMEOUT write outcome unknown: x  y: seshat: leadership lost, outcome unknown"},
		{fmt.Errorf("boom"), "ERR boom"},
	} {
		if got := ErrorText(c.err); got != c.want {
			t.Errorf("ErrorText(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestRelayedConnectionAndQuit(t *testing.T) {
	kv := &fakeKV{data: map[string]string{}}
	addr := serve(t, kv, Options{})
	got := exchange(t, addr, cmd("SESHAT.RELAYED")+cmd("SET", "a", "1")+cmd("QUIT")+cmd("SET", "b", "2"), 3)
	if d := cmp.Diff([]string{"+OK\r\n", "+OK\r\n", "+OK\r\n"}, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if len(kv.opts) != 1 || !kv.opts[0].Relayed || len(kv.batches[0]) != 1 {
		t.Fatalf("batches %v opts %v: want one relayed batch of SET a (nothing after QUIT)", kv.batches, kv.opts)
	}
}

func TestInfo(t *testing.T) {
	kv := &fakeKV{data: map[string]string{}}
	addr := serve(t, kv, Options{})
	got := exchange(t, addr, cmd("INFO", "replication"), 1)[0]
	want := "# Replication\r\nrole:follower\r\nnode_id:2\r\nleader:1\r\nleader_addr:h:1\r\nterm:3\r\ncommit_index:10\r\napplied_index:9\r\nlast_index:0\r\nvoters:1,2,3\r\nlearners:\r\n"
	if !strings.HasSuffix(got, want+"\r\n") {
		t.Fatalf("INFO replication = %q, want it to end with %q", got, want)
	}
	all := exchange(t, addr, cmd("INFO"), 1)[0]
	for _, s := range []string{"# Server\r\nredis_version:7.2.0\r\n", "\r\n\r\n# Clients\r\nconnected_clients:", "# Replication\r\n", "# Keyspace\r\n"} {
		if !strings.Contains(all, s) {
			t.Errorf("INFO lacks %q: %q", s, all)
		}
	}
}
