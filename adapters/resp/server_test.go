package resp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

// fakeKV runs requests on one in-memory state machine, as a single-node
// service would (writes as entries, reads on a view), and records each
// batch it gets.
type fakeKV struct {
	mu      sync.Mutex
	sm      *memory.KV
	index   domain.Index
	batches [][]ports.Request
	opts    []ports.DoOptions
	fail    error
}

func newFakeKV() *fakeKV { return &fakeKV{sm: memory.NewKV()} }

func (f *fakeKV) Do(_ context.Context, reqs []ports.Request, opts ports.DoOptions) []ports.Reply {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, reqs)
	f.opts = append(f.opts, opts)
	out := make([]ports.Reply, len(reqs))
	now := time.Now().UnixMilli()
	for i, r := range reqs {
		if f.fail != nil {
			out[i] = ports.ErrReply(f.fail)
			continue
		}
		if !r.IsWrite() {
			err := f.sm.View(func(st keyspace.Store) error {
				v, err := keyspace.Engine{}.Read(st, now, r.Call)
				out[i] = ports.Reply{Value: v, Err: err}
				return nil
			})
			if err != nil {
				out[i] = ports.ErrReply(err)
			}
			continue
		}
		c := domain.Command{Time: now, Tx: r.IsTx, Watch: r.Watch, Calls: r.Tx}
		if !r.IsTx {
			c.Calls = []domain.Call{r.Call}
		}
		f.index++
		res, err := f.sm.Apply([]domain.Entry{{Index: f.index, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(c)}})
		if err != nil {
			out[i] = ports.ErrReply(err)
			continue
		}
		out[i] = ports.Reply{Value: res[0].Reply}
	}
	return out
}

func (f *fakeKV) Versions(ctx context.Context, db int, keys [][]byte) ([]uint64, error) {
	args := append([][]byte{[]byte(keyspace.WatchCommand), []byte(fmt.Sprint(db))}, keys...)
	r := f.Do(ctx, []ports.Request{{Call: domain.Call{DB: db, Args: args}}}, ports.DoOptions{})[0]
	if r.Err != nil {
		return nil, r.Err
	}
	out := make([]uint64, len(keys))
	for i, v := range r.Value.Array {
		out[i] = uint64(v.Int)
	}
	return out, nil
}

func (f *fakeKV) Keyspace(n int) ([]ports.DBSize, error) {
	out := make([]ports.DBSize, n)
	err := f.sm.View(func(st keyspace.Store) error {
		for db := range out {
			k, e, err := st.Len(db)
			if err != nil {
				return err
			}
			out[db] = ports.DBSize{Keys: k, Expires: e}
		}
		return nil
	})
	return out, err
}

func (f *fakeKV) Status() ports.KVStatus {
	return ports.KVStatus{ID: 2, Role: "follower", Leader: 1, LeaderAddr: "h:1", Term: 3, Commit: 10, Applied: 9,
		Membership: domain.Membership{Voters: []domain.NodeID{1, 2, 3}}}
}

func serve(t testing.TB, kv ports.KV, opts Options) string {
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
	case '$', '=':
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
	case '*', '~', '%':
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		if line[0] == '%' {
			n *= 2
		}
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
	kv := newFakeKV()
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
	kv := newFakeKV()
	addr := serve(t, kv, Options{MaxValueBytes: 8})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get"}, "-ERR wrong number of arguments for 'get' command\r\n"},
		{[]string{"Foo", "a", "b"}, "-ERR unknown command 'Foo', with args beginning with: 'a' 'b' \r\n"},
		{[]string{"set", "k", "toolongvalue"}, "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"},
		{[]string{"set", "k", "v", "EX", "10"}, "+OK\r\n"},
		{[]string{"set", "k", "v", "PX", "-1"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"set", "k", "v", "EX", "1", "PX", "1"}, "-ERR syntax error\r\n"},
		{[]string{"set", "k", "v", "XX", "GET"}, "$1\r\nv\r\n"},
		{[]string{"set", "k", "v", "NX"}, "$-1\r\n"},
		{[]string{"multi", "x"}, "-ERR wrong number of arguments for 'multi' command\r\n"},
		{[]string{"exec"}, "-ERR EXEC without MULTI\r\n"},
		{[]string{"discard"}, "-ERR DISCARD without MULTI\r\n"},
		{[]string{"set", "k", "v", "KEEPTTL"}, "+OK\r\n"},
		{[]string{"mset", "a"}, "-ERR wrong number of arguments for 'mset' command\r\n"},
		{[]string{"ping", "a", "b"}, "-ERR wrong number of arguments for 'ping' command\r\n"},
		{[]string{"hello", "4"}, "-NOPROTO unsupported protocol version\r\n"},
		{[]string{"select", "0"}, "+OK\r\n"},
		{[]string{"select", "x"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"select", "16"}, "-ERR DB index is out of range\r\n"},
		{[]string{"client", "getname"}, "$-1\r\n"},
		{[]string{"client", "setname", "a b"}, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"client", "setname"}, "-ERR wrong number of arguments for 'client|setname' command\r\n"},
		{[]string{"client", "setinfo", "lib-name", "x"}, "+OK\r\n"},
		{[]string{"client", "kill"}, "-ERR wrong number of arguments for 'client|kill' command\r\n"},
		{[]string{"client", "nope"}, "-ERR unknown subcommand 'nope'. Try CLIENT HELP.\r\n"},
		{[]string{"command", "docs", "nosuch"}, "*0\r\n"},
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
		{fmt.Errorf("x\r\ny: %w", domain.ErrLeadershipLost), "TIMEOUT write outcome unknown: x  y: seshat: leadership lost, outcome unknown"},
		{fmt.Errorf("boom"), "ERR boom"},
	} {
		if got := ErrorText(c.err); got != c.want {
			t.Errorf("ErrorText(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestRelayedConnectionAndQuit(t *testing.T) {
	kv := newFakeKV()
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
	kv := newFakeKV()
	addr := serve(t, kv, Options{})
	got := exchange(t, addr, cmd("INFO", "replication"), 1)[0]
	want := "# Replication\r\nrole:slave\r\nmaster_host:h\r\nmaster_port:1\r\nmaster_link_status:up\r\n" +
		"master_last_io_seconds_ago:0\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:9\r\nslave_repl_offset:9\r\n" +
		"slave_priority:100\r\nslave_read_only:0\r\nreplica_announced:1\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n" +
		"master_replid:0000000000000000000100000000000000000003\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n" +
		"master_repl_offset:10\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:0\r\n" +
		"repl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\nraft_role:follower\r\nnode_id:2\r\nleader:1\r\nleader_addr:h:1\r\nterm:3\r\ncommit_index:10\r\napplied_index:9\r\nlast_index:0\r\nvoters:1,2,3\r\nlearners:\r\n"
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

// MULTI queues data commands and EXEC runs them as one request; a refused
// queued command dooms the EXEC; WATCH aborts EXEC when a watched key
// changed, even by the same connection.
func TestTransactions(t *testing.T) {
	kv := newFakeKV()
	addr := serve(t, kv, Options{})
	raw := cmd("MULTI") + cmd("SET", "a", "1") + cmd("INCR", "a") + cmd("GET", "a") + cmd("EXEC")
	want := []string{"+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n"}
	if d := cmp.Diff(want, exchange(t, addr, raw, 5)); d != "" {
		t.Errorf("MULTI/EXEC (-want +got):\n%s", d)
	}
	raw = cmd("MULTI") + cmd("SET", "a") + cmd("GET", "a") + cmd("EXEC")
	want = []string{"+OK\r\n", "-ERR wrong number of arguments for 'set' command\r\n", "+QUEUED\r\n", "-EXECABORT Transaction discarded because of previous errors.\r\n"}
	if d := cmp.Diff(want, exchange(t, addr, raw, 4)); d != "" {
		t.Errorf("EXECABORT (-want +got):\n%s", d)
	}
	raw = cmd("WATCH", "a") + cmd("SET", "a", "9") + cmd("MULTI") + cmd("GET", "a") + cmd("EXEC") + cmd("GET", "a")
	want = []string{"+OK\r\n", "+OK\r\n", "+OK\r\n", "+QUEUED\r\n", "*-1\r\n", "$1\r\n9\r\n"}
	if d := cmp.Diff(want, exchange(t, addr, raw, 6)); d != "" {
		t.Errorf("WATCH (-want +got):\n%s", d)
	}
	// Connection commands queue too; a queued SELECT moves the
	// connection only once EXEC has run.
	raw = cmd("MULTI") + cmd("SELECT", "1") + cmd("SET", "a", "x") + cmd("PING") + cmd("ECHO", "e") + cmd("SELECT", "99") + cmd("EXEC") + cmd("GET", "a")
	want = []string{"+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "+QUEUED\r\n",
		"*5\r\n+OK\r\n+OK\r\n+PONG\r\n$1\r\ne\r\n-ERR DB index is out of range\r\n", "$1\r\nx\r\n"}
	if d := cmp.Diff(want, exchange(t, addr, raw, 8)); d != "" {
		t.Errorf("MULTI with connection commands (-want +got):\n%s", d)
	}
	raw = cmd("MULTI") + cmd("SELECT", "1") + cmd("GET") + cmd("EXEC") + cmd("GET", "a")
	want = []string{"+OK\r\n", "+QUEUED\r\n", "-ERR wrong number of arguments for 'get' command\r\n",
		"-EXECABORT Transaction discarded because of previous errors.\r\n", "$1\r\n9\r\n"}
	if d := cmp.Diff(want, exchange(t, addr, raw, 5)); d != "" {
		t.Errorf("EXECABORT keeps the database (-want +got):\n%s", d)
	}
	raw = cmd("WATCH", "a") + cmd("MULTI") + cmd("SET", "a", "10") + cmd("EXEC") + cmd("MULTI") + cmd("DISCARD")
	want = []string{"+OK\r\n", "+OK\r\n", "+QUEUED\r\n", "*1\r\n+OK\r\n", "+OK\r\n", "+OK\r\n"}
	if d := cmp.Diff(want, exchange(t, addr, raw, 6)); d != "" {
		t.Errorf("WATCH unchanged (-want +got):\n%s", d)
	}
}

// bulk is a RESP2 bulk string.
func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// session runs the exchanges of one connection in order: each element is
// sent, then its replies are read.
type session struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *session {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return &session{t: t, c: c, r: bufio.NewReader(c)}
}

func (s *session) do(args ...string) string {
	s.t.Helper()
	if _, err := io.WriteString(s.c, cmd(args...)); err != nil {
		s.t.Fatal(err)
	}
	return readRaw(s.t, s.r)
}

func (s *session) expect(want string, args ...string) {
	s.t.Helper()
	if got := s.do(args...); got != want {
		s.t.Errorf("%q: got %q, want %q", args, got, want)
	}
}

func helloReply(resp3 bool, id int) string {
	head, proto := "*14\r\n", ":2\r\n"
	if resp3 {
		head, proto = "%7\r\n", ":3\r\n"
	}
	return head + bulk("server") + bulk("redis") + bulk("version") + bulk(RedisVersion) +
		bulk("proto") + proto + bulk("id") + fmt.Sprintf(":%d\r\n", id) + bulk("mode") + bulk("standalone") +
		bulk("role") + bulk("replica") + bulk("modules") + "*0\r\n"
}

// HELLO 3 switches the connection to RESP3: nulls, maps, verbatim strings;
// HELLO 2 and RESET switch back.
func TestHelloRESP3(t *testing.T) {
	addr := serve(t, newFakeKV(), Options{})
	s := dial(t, addr)
	s.expect(helloReply(false, 1), "HELLO")
	s.expect("-NOPROTO unsupported protocol version\r\n", "HELLO", "1")
	s.expect("-ERR Protocol version is not an integer or out of range\r\n", "HELLO", "x")
	s.expect("-ERR Syntax error in HELLO option 'SETNAME'\r\n", "HELLO", "3", "SETNAME")
	s.expect("-ERR Syntax error in HELLO option 'foo'\r\n", "HELLO", "3", "foo")
	s.expect(helloReply(true, 1), "HELLO", "3", "SETNAME", "conn1")
	s.expect(bulk("conn1"), "CLIENT", "GETNAME")
	s.expect("_\r\n", "GET", "missing")
	s.expect("+OK\r\n", "CLIENT", "SETNAME", "")
	s.expect("_\r\n", "CLIENT", "GETNAME")
	s.expect("%1\r\n"+bulk("maxmemory")+bulk("0"), "CONFIG", "GET", "maxmemory")
	s.expect("%0\r\n", "CONFIG", "GET", "nosuch")
	if got := s.do("COMMAND", "DOCS", "get"); !strings.HasPrefix(got, "%1\r\n"+bulk("get")+"%4\r\n"+bulk("summary")+bulk(docTable["get"].summary)+bulk("since")+bulk("1.0.0")+bulk("group")+bulk("string")+bulk("arguments")+"*1\r\n%3\r\n"+bulk("name")+bulk("key")+bulk("type")+bulk("key")) {
		t.Errorf("COMMAND DOCS get in RESP3 = %q", got)
	}
	if got := s.do("INFO", "server"); !strings.HasPrefix(got, "=") || !strings.Contains(got, "\r\ntxt:# Server\r\n") {
		t.Errorf("INFO in RESP3 = %q, want a verbatim string", got)
	}
	if got := s.do("CLIENT", "INFO"); !strings.HasPrefix(got, "=") || !strings.Contains(got, " resp=3 ") {
		t.Errorf("CLIENT INFO in RESP3 = %q", got)
	}
	s.expect("+OK\r\n", "MULTI")
	s.expect("+QUEUED\r\n", "GET", "missing")
	s.expect("*1\r\n_\r\n", "EXEC")
	s.expect(helloReply(false, 1), "HELLO", "2")
	s.expect("$-1\r\n", "GET", "missing")
	s.expect(helloReply(true, 1), "HELLO", "3")
	s.expect("+RESET\r\n", "RESET")
	s.expect("$-1\r\n", "GET", "missing")
	// A pipelined HELLO 3 changes the protocol of the replies after it only.
	got := exchange(t, addr, cmd("GET", "x")+cmd("HELLO", "3")+cmd("GET", "x"), 3)
	if got[0] != "$-1\r\n" || got[2] != "_\r\n" {
		t.Errorf("pipelined HELLO 3: %q", got)
	}
}

func TestAuth(t *testing.T) {
	addr := serve(t, newFakeKV(), Options{RequirePass: "secret"})
	s := dial(t, addr)
	s.expect("-NOAUTH Authentication required.\r\n", "PING")
	s.expect("-NOAUTH Authentication required.\r\n", "SET", "a", "1")
	s.expect("-NOAUTH Authentication required.\r\n", "SESHAT.RELAYED")
	s.expect("-NOAUTH Authentication required.\r\n", "MULTI")
	// Unknown commands and wrong arities are reported first, as Redis does.
	s.expect("-ERR unknown command 'nope', with args beginning with: \r\n", "nope")
	s.expect("-ERR wrong number of arguments for 'get' command\r\n", "GET")
	s.expect("-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n", "HELLO", "3")
	s.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "wrong")
	s.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "bob", "secret")
	s.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "HELLO", "3", "AUTH", "default", "nope")
	s.expect("-ERR syntax error\r\n", "AUTH", "a", "b", "c")
	s.expect("+RESET\r\n", "RESET")
	s.expect("+OK\r\n", "AUTH", "secret")
	s.expect("+PONG\r\n", "PING")
	s.expect("+RESET\r\n", "RESET")
	s.expect("-NOAUTH Authentication required.\r\n", "PING")
	s.expect("+OK\r\n", "AUTH", "default", "secret")
	s.expect("+OK\r\n", "SET", "a", "1")
	s.expect("+RESET\r\n", "RESET")
	s.expect(helloReply(true, 1), "HELLO", "3", "AUTH", "default", "secret")
	s.expect("_\r\n", "GET", "b")
	// A failed AUTH keeps an authenticated connection authenticated.
	s.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "x")
	s.expect("+PONG\r\n", "PING")
	// The password is never shown, not even to an authenticated client.
	s.expect("%0\r\n", "CONFIG", "GET", "requirepass")

	q := dial(t, addr)
	q.expect("+OK\r\n", "QUIT")

	// Without a password: AUTH pass is an error, AUTH default any is OK.
	addr = serve(t, newFakeKV(), Options{})
	s = dial(t, addr)
	s.expect("-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n", "AUTH", "x")
	s.expect("+OK\r\n", "AUTH", "default", "x")
	s.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "bob", "x")
	s.expect(helloReply(false, 1), "HELLO", "2", "AUTH", "default", "x")
}

func TestResetAndTime(t *testing.T) {
	kv := newFakeKV()
	addr := serve(t, kv, Options{})
	s := dial(t, addr)
	s.expect("+OK\r\n", "SELECT", "3")
	s.expect("+OK\r\n", "SET", "a", "1")
	s.expect("+OK\r\n", "CLIENT", "SETNAME", "x")
	s.expect("+OK\r\n", "WATCH", "a")
	s.expect("+OK\r\n", "MULTI")
	s.expect("+QUEUED\r\n", "SET", "a", "2")
	s.expect("+RESET\r\n", "RESET")
	s.expect("-ERR EXEC without MULTI\r\n", "EXEC")
	s.expect("$-1\r\n", "CLIENT", "GETNAME")
	s.expect("$-1\r\n", "GET", "a") // db 0 again
	s.expect("+OK\r\n", "SELECT", "3")
	s.expect(bulk("1"), "GET", "a")
	s.expect("-ERR wrong number of arguments for 'reset' command\r\n", "RESET", "x")

	got := s.do("TIME")
	var sec, usec int64
	var l1, l2 int
	if _, err := fmt.Sscanf(got, "*2\r\n$%d\r\n%d\r\n$%d\r\n%d\r\n", &l1, &sec, &l2, &usec); err != nil {
		t.Fatalf("TIME = %q: %v", got, err)
	}
	if d := time.Now().Unix() - sec; d < -1 || d > 1 || usec < 0 || usec >= 1e6 {
		t.Fatalf("TIME = %q", got)
	}
}

func TestClientListInfoKill(t *testing.T) {
	addr := serve(t, newFakeKV(), Options{})
	a := dial(t, addr)
	b := dial(t, addr)
	a.expect(":1\r\n", "CLIENT", "ID")
	b.expect(":2\r\n", "CLIENT", "ID")
	b.expect("+OK\r\n", "CLIENT", "SETNAME", "bee")
	b.expect("+OK\r\n", "CLIENT", "SETINFO", "lib-name", "go-redis")
	b.expect("+OK\r\n", "SELECT", "2")
	a.expect("+OK\r\n", "CLIENT", "NO-EVICT", "on")
	a.expect("+OK\r\n", "CLIENT", "NO-TOUCH", "OFF")
	a.expect("-ERR syntax error\r\n", "CLIENT", "NO-EVICT", "maybe")
	if got := a.do("CLIENT", "HELP"); !strings.HasPrefix(got, "*") || !strings.Contains(got, "+KILL <ip:port> | KILL [ID <id>]") {
		t.Errorf("CLIENT HELP = %q", got)
	}

	info := a.do("CLIENT", "INFO")
	la, ra := a.c.LocalAddr().String(), a.c.RemoteAddr().String()
	line := fmt.Sprintf("id=1 addr=%s laddr=%s fd=", la, ra)
	rest := " name= age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|info user=default redir=-1 resp=2 lib-name= lib-ver=\n"
	if !strings.Contains(info, line) || !strings.HasSuffix(info, rest+"\r\n") {
		t.Errorf("CLIENT INFO = %q, want %q...%q", info, line, rest)
	}
	list := a.do("CLIENT", "LIST")
	lines := strings.Split(strings.TrimSuffix(list[strings.Index(list, "\r\n")+2:], "\n\r\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "id=1 ") || !strings.HasPrefix(lines[1], "id=2 ") ||
		!strings.Contains(lines[1], " name=bee ") || !strings.Contains(lines[1], " db=2 ") ||
		!strings.Contains(lines[1], " cmd=select ") || !strings.Contains(lines[1], " lib-name=go-redis ") {
		t.Errorf("CLIENT LIST = %q", list)
	}
	if got := a.do("CLIENT", "LIST", "ID", "2"); !strings.HasPrefix(got, "$") || strings.Contains(got, "id=1 ") || !strings.Contains(got, "id=2 ") {
		t.Errorf("CLIENT LIST ID 2 = %q", got)
	}
	a.expect("$0\r\n\r\n", "CLIENT", "LIST", "TYPE", "pubsub")
	a.expect("-ERR Unknown client type 'x'\r\n", "CLIENT", "LIST", "TYPE", "x")

	a.expect("-ERR No such client\r\n", "CLIENT", "KILL", "1.2.3.4:5")
	a.expect(":0\r\n", "CLIENT", "KILL", "ID", "99")
	a.expect("-ERR client-id should be greater than 0\r\n", "CLIENT", "KILL", "ID", "x")
	a.expect("-ERR syntax error\r\n", "CLIENT", "KILL", "FOO", "1")
	a.expect(":0\r\n", "CLIENT", "KILL", "ID", "1") // SKIPME yes
	a.expect(":1\r\n", "CLIENT", "KILL", "ID", "2")
	if _, err := b.r.ReadByte(); err == nil {
		t.Fatal("killed connection still open")
	}
	c := dial(t, addr)
	c.expect("+PONG\r\n", "PING")
	a.expect(":1\r\n", "CLIENT", "KILL", "ADDR", c.c.LocalAddr().String())
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("killed connection still open")
	}
	d := dial(t, addr)
	d.expect("+PONG\r\n", "PING")
	a.expect("+OK\r\n", "CLIENT", "KILL", d.c.LocalAddr().String())
	// Killing itself: the reply, then the connection closes.
	a.expect(":1\r\n", "CLIENT", "KILL", "ID", "1", "SKIPME", "no")
	if _, err := a.r.ReadByte(); err == nil {
		t.Fatal("self-killed connection still open")
	}
}

func TestCommandTable(t *testing.T) {
	addr := serve(t, newFakeKV(), Options{})
	s := dial(t, addr)
	n := len(commandTable)
	s.expect(fmt.Sprintf(":%d\r\n", n), "COMMAND", "COUNT")
	getInfo := "*10\r\n" + bulk("get") + ":2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n" +
		"*1\r\n*6\r\n" + bulk("flags") + "*2\r\n+RO\r\n+access\r\n" +
		bulk("begin_search") + "*4\r\n" + bulk("type") + bulk("index") + bulk("spec") + "*2\r\n" + bulk("index") + ":1\r\n" +
		bulk("find_keys") + "*4\r\n" + bulk("type") + bulk("range") + bulk("spec") + "*6\r\n" + bulk("lastkey") + ":0\r\n" + bulk("keystep") + ":1\r\n" + bulk("limit") + ":0\r\n" +
		"*0\r\n"
	s.expect("*2\r\n"+getInfo+"$-1\r\n", "COMMAND", "INFO", "GET", "nosuch")
	pingInfo := "*10\r\n" + bulk("ping") + ":-1\r\n*1\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n"
	s.expect("*1\r\n"+pingInfo, "COMMAND", "INFO", "ping")
	all := s.do("COMMAND")
	if !strings.HasPrefix(all, fmt.Sprintf("*%d\r\n", n)) || !strings.Contains(all, getInfo) || strings.Contains(strings.ReplaceAll(all, "seshat.member", ""), "seshat") {
		t.Errorf("COMMAND = %q", all)
	}
	list := s.do("COMMAND", "LIST")
	for _, name := range []string{"get", "set", "ping", "hello", "client", "watch"} {
		if !strings.Contains(list, "\r\n"+bulk(name)) {
			t.Errorf("COMMAND LIST lacks %s: %q", name, list)
		}
	}
	s.expect("*2\r\n"+bulk("getdel")+bulk("getex"), "COMMAND", "LIST", "FILTERBY", "PATTERN", "GET[de]?*")
	s.expect("*2\r\n"+bulk("a")+bulk("c"), "COMMAND", "GETKEYS", "MSET", "a", "b", "c", "d")
	s.expect("-ERR The command has no key arguments\r\n", "COMMAND", "GETKEYS", "ping", "x")
	s.expect("-ERR Invalid command specified\r\n", "COMMAND", "GETKEYS", "nope", "x")
	s.expect("-ERR wrong number of arguments for 'command|getkeys' command\r\n", "COMMAND", "GETKEYS", "get")
	s.expect("*0\r\n", "COMMAND", "DOCS", "nosuch")
	if got := s.do("COMMAND", "DOCS", "ping"); !strings.HasPrefix(got, "*2\r\n"+bulk("ping")+"*8\r\n"+bulk("summary")+bulk(docTable["ping"].summary)+bulk("since")+bulk("1.0.0")+bulk("group")+bulk("connection")+bulk("arguments")+"*1\r\n*6\r\n"+bulk("name")+bulk("message")+bulk("type")+bulk("string")+bulk("flags")+"*1\r\n+optional\r\n") {
		t.Errorf("COMMAND DOCS ping = %q", got)
	}
	// RESP3: sets and maps.
	s.do("HELLO", "3")
	got := s.do("COMMAND", "INFO", "get")
	for _, frag := range []string{":2\r\n~2\r\n+readonly\r\n+fast\r\n", "~3\r\n+@read\r\n", "~0\r\n~1\r\n%3\r\n" + bulk("flags") + "~2\r\n+RO\r\n", "%2\r\n" + bulk("type") + bulk("index"), ":0\r\n~0\r\n"} {
		if !strings.Contains(got, frag) {
			t.Errorf("COMMAND INFO get in RESP3 = %q, lacks %q", got, frag)
		}
	}
	s.expect("*1\r\n_\r\n", "COMMAND", "INFO", "nosuch")
	if got := s.do("COMMAND", "DOCS", "ping"); !strings.HasPrefix(got, "%1\r\n"+bulk("ping")+"%4\r\n"+bulk("summary")+bulk(docTable["ping"].summary)+bulk("since")+bulk("1.0.0")+bulk("group")+bulk("connection")+bulk("arguments")+"*1\r\n%3\r\n"+bulk("name")+bulk("message")+bulk("type")+bulk("string")+bulk("flags")+"~1\r\n+optional\r\n") {
		t.Errorf("COMMAND DOCS ping in RESP3 = %q", got)
	}
}

func TestConfig(t *testing.T) {
	addr := serve(t, newFakeKV(), Options{Databases: 4, MaxValueBytes: 1000})
	s := dial(t, addr)
	s.expect("*4\r\n"+bulk("databases")+bulk("4")+bulk("proto-max-bulk-len")+bulk("1000"), "CONFIG", "GET", "DATA*", "proto-max-bulk-len")
	s.expect("*4\r\n"+bulk("appendonly")+bulk("no")+bulk("appendfsync")+bulk("always"), "CONFIG", "GET", "append*")
	s.expect("*0\r\n", "CONFIG", "GET", "requirepass")
	_, port, _ := splitPort(addr)
	s.expect("*2\r\n"+bulk("port")+bulk(port), "CONFIG", "GET", "port")
	if got := s.do("CONFIG", "GET", "*"); !strings.HasPrefix(got, "*16\r\n") {
		t.Errorf("CONFIG GET * = %q", got)
	}
	s.expect("-ERR Unknown option or number of arguments for CONFIG SET - 'foo'\r\n", "CONFIG", "SET", "foo", "1")
	s.expect("-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n", "CONFIG", "SET", "databases", "3")
	s.expect("-ERR wrong number of arguments for 'config|set' command\r\n", "CONFIG", "SET", "x")
	s.expect("-ERR wrong number of arguments for 'config|get' command\r\n", "CONFIG", "GET")
	s.expect("+OK\r\n", "CONFIG", "RESETSTAT")
	s.expect("-ERR unknown subcommand 'nope'. Try CONFIG HELP.\r\n", "CONFIG", "nope")
}

func TestInfoSections(t *testing.T) {
	addr := serve(t, newFakeKV(), Options{Version: "1.2.3"})
	s := dial(t, addr)
	s.do("SET", "a", "1")
	s.do("GET", "a")
	s.do("GET", "a")
	deflt := s.do("INFO")
	for _, sec := range []string{"# Server\r\n", "# Clients\r\n", "# Memory\r\n", "# Persistence\r\n", "# Stats\r\n", "# Replication\r\n", "# Cluster\r\n", "# Keyspace\r\n",
		"seshat_version:1.2.3\r\n", "connected_clients:1\r\n", "loading:0\r\n", "aof_enabled:0\r\n", "total_connections_received:1\r\n",
		"total_commands_processed:4\r\n", "instantaneous_ops_per_sec:0\r\n", "used_memory:", "raft_role:follower\r\n", "db0:keys=1,expires=0,avg_ttl=0\r\n"} {
		if !strings.Contains(deflt, sec) {
			t.Errorf("INFO lacks %q", sec)
		}
	}
	if strings.Contains(deflt, "# Commandstats") {
		t.Errorf("INFO default has commandstats")
	}
	// Latencies vary: compare the counts, check the times are numbers.
	got := regexp.MustCompile(`usec=[0-9]+,usec_per_call=[0-9]+\.[0-9]{2},`).ReplaceAllString(s.do("INFO", "commandstats"), "usec=0,usec_per_call=0.00,")
	want := "# Commandstats\r\ncmdstat_get:calls=2,usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=2,usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_set:calls=1,usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls=0\r\n"
	_, got, _ = strings.Cut(got, "\r\n") // the bulk length varies with the times
	if _, wantBody, _ := strings.Cut(bulk(want), "\r\n"); got != wantBody {
		t.Errorf("INFO commandstats = %q, want %q", got, bulk(want))
	}
	two := s.do("INFO", "clients", "STATS")
	if !strings.Contains(two, "# Clients\r\n") || !strings.Contains(two, "\r\n\r\n# Stats\r\n") || strings.Contains(two, "# Server") {
		t.Errorf("INFO clients stats = %q", two)
	}
	if all := s.do("INFO", "everything"); !strings.Contains(all, "# Commandstats\r\n") || !strings.Contains(all, "# Server\r\n") {
		t.Errorf("INFO everything = %q", all)
	}
	s.expect("$0\r\n\r\n", "INFO", "nosuch")
}

func TestCluster(t *testing.T) {
	addr := serve(t, newFakeKV(), Options{})
	s := dial(t, addr)
	for _, c := range [][]string{{"CLUSTER", "SLOTS"}, {"CLUSTER", "INFO"}, {"READONLY"}, {"READWRITE"}} {
		s.expect("-ERR This instance has cluster support disabled\r\n", c...)
	}

	addr = serve(t, newFakeKV(), Options{Redirect: true})
	s = dial(t, addr)
	leader := fmt.Sprintf("%040x", 1)
	s.expect("*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n"+bulk("h")+":1\r\n"+bulk(leader)+"*0\r\n", "CLUSTER", "SLOTS")
	s.expect(bulk(fmt.Sprintf("%040x", 2)), "CLUSTER", "MYID")
	s.expect("+OK\r\n", "READONLY")
	s.expect("+OK\r\n", "READWRITE")
	s.expect(bulk(leader+" h:1@10001 master - 0 0 3 connected 0-16383\n"), "CLUSTER", "NODES")
	if got := s.do("CLUSTER", "INFO"); !strings.Contains(got, "cluster_state:ok\r\n") || !strings.Contains(got, "cluster_slots_assigned:16384\r\n") {
		t.Errorf("CLUSTER INFO = %q", got)
	}
	shards := s.do("CLUSTER", "SHARDS")
	if !strings.HasPrefix(shards, "*1\r\n*4\r\n"+bulk("slots")+"*2\r\n:0\r\n:16383\r\n"+bulk("nodes")+"*1\r\n*14\r\n"+bulk("id")+bulk(leader)) {
		t.Errorf("CLUSTER SHARDS = %q", shards)
	}
	s.expect(":15495\r\n", "CLUSTER", "KEYSLOT", "a")
	s.expect(":12182\r\n", "CLUSTER", "KEYSLOT", "foo")
	s.expect(":15495\r\n", "CLUSTER", "KEYSLOT", "x{a}y")
	s.expect("-ERR unknown subcommand 'nope'. Try CLUSTER HELP.\r\n", "CLUSTER", "nope")
	if got := s.do("HELLO"); !strings.Contains(got, bulk("mode")+bulk("cluster")) {
		t.Errorf("HELLO in redirect mode = %q", got)
	}
}

// A bulk string past MaxValueBytes is refused as it arrives, before it is
// buffered: the client gets Redis's protocol error and the connection is
// closed; what was stored before is untouched.
func TestOversizedBulkClosesConnection(t *testing.T) {
	kv := newFakeKV()
	addr := serve(t, kv, Options{MaxValueBytes: 1 << 10})
	if got := exchange(t, addr, cmd("SET", "k", "small"), 1); got[0] != "+OK\r\n" {
		t.Fatalf("SET = %q", got)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	// Announce 10 GB and send only the start of it.
	if _, err := io.WriteString(c, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10000000000\r\nxxxx"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil || line != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("reply %q, %v; want the protocol error", line, err)
	}
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("connection still open after the protocol error: %v", err)
	}
	if got := exchange(t, addr, cmd("GET", "k"), 1); got[0] != "$5\r\nsmall\r\n" {
		t.Fatalf("GET after the refused SET = %q", got)
	}
}

// Relayed batches pipelined on one connection run as one batch (one
// proposal for all their writes on a leader) and are answered each in its
// own bulk reply, in order; a malformed one is refused alone.
func TestRelayedBatchesRunTogether(t *testing.T) {
	kv := newFakeKV()
	addr := serve(t, kv, Options{})
	call := func(args ...string) ports.Request {
		c := domain.Call{}
		for _, a := range args {
			c.Args = append(c.Args, []byte(a))
		}
		return ports.Request{Call: c}
	}
	a := ports.EncodeRequests([]ports.Request{call("SET", "a", "1"), call("GET", "a")})
	b := ports.EncodeRequests([]ports.Request{call("SET", "b", "2")})
	got := exchange(t, addr, cmd("SESHAT.RELAYED")+cmd("SESHAT.DO", string(a))+cmd("SESHAT.DO", "\x02\x01")+
		cmd("SESHAT.DO", string(b))+cmd("PING"), 5)
	if got[0] != "+OK\r\n" || !strings.HasPrefix(got[2], "-") || got[4] != "+PONG\r\n" {
		t.Fatalf("replies %q", got)
	}
	for i, want := range map[int][]domain.Reply{1: {domain.OK, domain.StringReply("1")}, 3: {domain.OK}} {
		raw := got[i]
		body := raw[strings.Index(raw, "\r\n")+2 : len(raw)-2]
		vals, refused, err := ports.DecodeReplies([]byte(body), len(want))
		if err != nil || refused {
			t.Fatalf("reply %d %q: %v, refused %v", i, raw, err, refused)
		}
		if d := cmp.Diff(want, vals); d != "" {
			t.Fatalf("reply %d (-want +got):\n%s", i, d)
		}
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if len(kv.batches) != 1 || len(kv.batches[0]) != 3 || !kv.opts[0].Relayed {
		t.Fatalf("batches %v, want one relayed batch of the 3 requests of both good payloads", kv.batches)
	}
}
