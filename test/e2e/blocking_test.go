package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// blockingClient is a go-redis client of node id for blocking commands:
// its read timeout leaves room for the command's own.
func blockingClient(c *cluster, id, proto int) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: c.clients[id-1], Protocol: proto, MaxRetries: -1,
		DialTimeout: 2 * time.Second, ReadTimeout: 30 * time.Second, PoolSize: 32})
}

// TestBlockingPopsServedAcrossNodes blocks clients on a follower and
// serves them with writes on the leader: BLPOP, BRPOP, BLMOVE,
// BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX and BZMPOP, in RESP2 and RESP3.
func TestBlockingPopsServedAcrossNodes(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	follower := others(3, lead)[0]
	lr := c.client(lead)
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ctx := ctxT(t, 60*time.Second)
			r := blockingClient(c, follower, proto)
			defer r.Close()
			p := fmt.Sprintf("p%d:", proto)
			// serve runs block on the follower, then feed on the leader once
			// the follower reports the client blocked, and returns block's
			// result.
			serve := func(block func() (any, error), feed func() error) any {
				t.Helper()
				type res struct {
					v   any
					err error
				}
				done := make(chan res, 1)
				go func() { v, err := block(); done <- res{v, err} }()
				waitBlocked(t, c, follower, 1)
				if err := feed(); err != nil {
					t.Fatal(err)
				}
				select {
				case x := <-done:
					if x.err != nil {
						t.Fatal(x.err)
					}
					return x.v
				case <-time.After(10 * time.Second):
					t.Fatal("blocked client not served within 10s")
				}
				return nil
			}
			eq := func(what string, got, want any) {
				t.Helper()
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s = %v, want %v", what, got, want)
				}
			}
			got := serve(func() (any, error) { return r.BLPop(ctx, 0, p+"a", p+"b").Result() },
				func() error { return lr.RPush(ctx, p+"b", "x", "y").Err() })
			eq("BLPOP", got, []string{p + "b", "x"})
			got = serve(func() (any, error) { return r.BRPop(ctx, 5*time.Second, p+"c").Result() },
				func() error { return lr.RPush(ctx, p+"c", "1", "2").Err() })
			eq("BRPOP", got, []string{p + "c", "2"})
			got = serve(func() (any, error) { return r.BLMove(ctx, p+"d", p+"e", "LEFT", "RIGHT", 0).Result() },
				func() error { return lr.LPush(ctx, p+"d", "m").Err() })
			eq("BLMOVE", got, "m")
			got = serve(func() (any, error) { return r.BRPopLPush(ctx, p+"f", p+"e", 0).Result() },
				func() error { return lr.LPush(ctx, p+"f", "n").Err() })
			eq("BRPOPLPUSH", got, "n")
			eq("LRANGE dest", lr.LRange(ctx, p+"e", 0, -1).Val(), []string{"n", "m"})
			got = serve(func() (any, error) {
				k, v, err := r.BLMPop(ctx, 0, "RIGHT", 5, p+"g", p+"h").Result()
				return fmt.Sprint(k, v), err
			}, func() error { return lr.RPush(ctx, p+"h", "1", "2", "3").Err() })
			eq("BLMPOP", got, fmt.Sprint(p+"h", []string{"3", "2", "1"}))
			got = serve(func() (any, error) { return r.BZPopMin(ctx, 0, p+"z").Result() },
				func() error {
					return lr.ZAdd(ctx, p+"z", redis.Z{Score: 2, Member: "b"}, redis.Z{Score: 1.5, Member: "a"}).Err()
				})
			eq("BZPOPMIN", got, &redis.ZWithKey{Z: redis.Z{Score: 1.5, Member: "a"}, Key: p + "z"})
			got = serve(func() (any, error) { return r.BZPopMax(ctx, 0, p+"y", p+"z2").Result() },
				func() error { return lr.ZAdd(ctx, p+"z2", redis.Z{Score: 7, Member: "q"}).Err() })
			eq("BZPOPMAX", got, &redis.ZWithKey{Z: redis.Z{Score: 7, Member: "q"}, Key: p + "z2"})
			got = serve(func() (any, error) {
				k, zs, err := r.BZMPop(ctx, 0, "MIN", 2, p+"z3").Result()
				return fmt.Sprint(k, zs), err
			}, func() error {
				return lr.ZAdd(ctx, p+"z3", redis.Z{Score: 3, Member: "c"}, redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2, Member: "b"}).Err()
			})
			eq("BZMPOP", got, fmt.Sprint(p+"z3", []redis.Z{{Score: 1, Member: "a"}, {Score: 2, Member: "b"}}))
			// Every replica applied the same pops.
			for id := 1; id <= 3; id++ {
				waitFor(t, 5*time.Second, func() bool {
					return fmt.Sprint(c.client(id).ZRange(ctx, p+"z3", 0, -1).Val()) == "[c]" &&
						fmt.Sprint(c.client(id).LRange(ctx, p+"h", 0, -1).Val()) == "[]"
				}, "node %d's replica of the popped keys", id)
			}
		})
	}
}

// consume runs n goroutines per client, each popping with pop until stop
// is called and handing each pop's result to got (a timeout's nil
// excluded).
func consume(clients []*redis.Client, n int, pop func(*redis.Client) ([]string, error), got func(kv []string, err error)) (stop func()) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for _, r := range clients {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					kv, err := pop(r)
					if !errors.Is(err, redis.Nil) {
						got(kv, err)
					}
				}
			}()
		}
	}
	return func() { close(done); wg.Wait() }
}

// waitBlocked waits until node id counts n blocked clients (INFO
// clients' blocked_clients).
func waitBlocked(t *testing.T, c *cluster, id, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool {
		s, err := c.client(id).Info(context.Background(), "clients").Result()
		return err == nil && strings.Contains(s, "blocked_clients:"+strconv.Itoa(n)+"\r\n")
	}, "%d blocked clients on node %d", n, id)
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for "+what, append([]any{d}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBlockingEveryElementOnce blocks clients on every node and pushes
// elements through every node: each element is delivered to exactly one
// client, and none is lost.
func TestBlockingEveryElementOnce(t *testing.T) {
	c := newCluster(t, 3)
	c.leader(10 * time.Second)
	ctx := ctxT(t, 90*time.Second)
	const (
		perNode = 4 // blocked clients per node
		pushes  = 40
		perPush = 3
	)
	var (
		mu  sync.Mutex
		got []string
	)
	var clients []*redis.Client
	for id := 1; id <= 3; id++ {
		r := blockingClient(c, id, 3)
		defer r.Close()
		clients = append(clients, r)
	}
	stop := consume(clients, perNode, func(r *redis.Client) ([]string, error) {
		return r.BLPop(ctx, 500*time.Millisecond, "q1", "q2").Result()
	}, func(kv []string, err error) {
		if err != nil {
			t.Errorf("BLPOP: %v", err)
			time.Sleep(50 * time.Millisecond)
			return
		}
		mu.Lock()
		got = append(got, kv[1])
		mu.Unlock()
	})
	waitBlocked(t, c, 1, perNode)
	var want []string
	for i := range pushes {
		id := i%3 + 1
		key := []string{"q1", "q2"}[i%2]
		var els []any
		for j := range perPush {
			e := fmt.Sprintf("e%03d.%d", i, j)
			els = append(els, e)
			want = append(want, e)
		}
		if err := c.client(id).RPush(ctx, key, els...).Err(); err != nil {
			t.Fatal(err)
		}
		if i%8 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= len(want)
	}, "%d elements delivered", len(want))
	stop()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d elements, want %d, each once:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for _, k := range []string{"q1", "q2"} {
		if n := c.client(1).LLen(ctx, k).Val(); n != 0 {
			t.Fatalf("%s still holds %d elements", k, n)
		}
	}
}

// TestBlockingTimeoutUnblockAndMulti: a timeout answers nil, CLIENT
// UNBLOCK answers nil or UNBLOCKED, and inside MULTI a blocking pop does
// not block.
func TestBlockingTimeoutUnblockAndMulti(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	follower := others(3, lead)[0]
	ctx := ctxT(t, 60*time.Second)
	r := blockingClient(c, follower, 3)
	defer r.Close()

	t0 := time.Now()
	// go-redis rounds timeouts below 1s up to 1s: send the command as is.
	if err := r.Do(ctx, "BLPOP", "none", "0.3").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("BLPOP timing out: %v, want nil", err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond || d > 3*time.Second {
		t.Fatalf("BLPOP with timeout 0.3 s answered after %v", d)
	}
	if err := r.Do(ctx, "BZPOPMIN", "none", "0.1").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("BZPOPMIN timing out: %v, want nil", err)
	}

	for _, how := range []string{"TIMEOUT", "ERROR"} {
		conn := r.Conn()
		id, err := conn.ClientID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- conn.BRPop(ctx, 0, "none").Err() }()
		waitBlocked(t, c, follower, 1)
		unblock := c.client(follower).ClientUnblockWithError
		if how == "TIMEOUT" {
			unblock = c.client(follower).ClientUnblock
		}
		n, err := unblock(ctx, id).Result()
		if err != nil || n != 1 {
			t.Fatalf("CLIENT UNBLOCK %d %s = %d, %v", id, how, n, err)
		}
		err = <-done
		switch how {
		case "TIMEOUT":
			if !errors.Is(err, redis.Nil) {
				t.Fatalf("unblocked with TIMEOUT: %v, want nil", err)
			}
		case "ERROR":
			if err == nil || !strings.HasPrefix(err.Error(), "UNBLOCKED") {
				t.Fatalf("unblocked with ERROR: %v, want UNBLOCKED", err)
			}
		}
		if n := c.client(follower).ClientUnblock(ctx, id).Val(); n != 0 {
			t.Fatalf("CLIENT UNBLOCK of a client not blocked = %d", n)
		}
		conn.Close()
	}

	// MULTI: no blocking; the pops run in the transaction.
	cmds, err := r.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.BLPop(ctx, 0, "mq")
		p.RPush(ctx, "mq", "a", "b")
		p.BLPop(ctx, 0, "mq")
		p.BZPopMin(ctx, 0, "mz")
		p.BLMove(ctx, "mq", "mq2", "LEFT", "LEFT", 0)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	if err := cmds[0].Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("BLPOP on an empty list in MULTI: %v, want nil", err)
	}
	if v := cmds[2].(*redis.StringSliceCmd).Val(); fmt.Sprint(v) != "[mq a]" {
		t.Fatalf("BLPOP in MULTI = %v", v)
	}
	if err := cmds[3].Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("BZPOPMIN on an empty zset in MULTI: %v, want nil", err)
	}
	if v := cmds[4].(*redis.StringCmd).Val(); v != "b" {
		t.Fatalf("BLMOVE in MULTI = %q", v)
	}
}

// TestBlockingDisconnectLosesNothing: clients that block and disconnect
// (or are killed) pop nothing; an element pushed while they go is still
// there, or popped by the one client that stays.
func TestBlockingDisconnectLosesNothing(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	follower := others(3, lead)[0]
	ctx := ctxT(t, 60*time.Second)
	lr := c.client(lead)
	raw := func(id int, key string) net.Conn {
		t.Helper()
		conn, err := net.Dial("tcp", c.clients[id-1])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "*3\r\n$5\r\nBLPOP\r\n$%d\r\n%s\r\n$1\r\n0\r\n", len(key), key)
		return conn
	}
	// A client that left is no longer served.
	conn := raw(follower, "d1")
	waitBlocked(t, c, follower, 1)
	conn.Close()
	waitBlocked(t, c, follower, 0)
	if err := lr.RPush(ctx, "d1", "x").Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if v := lr.LRange(ctx, "d1", 0, -1).Val(); fmt.Sprint(v) != "[x]" {
		t.Fatalf("after a blocked client left: d1 = %v, want [x]", v)
	}
	// CLIENT KILL: the same.
	conn = raw(follower, "d2")
	defer conn.Close()
	waitBlocked(t, c, follower, 1)
	if err := c.client(follower).ClientKillByFilter(ctx, "SKIPME", "yes", "ADDR", conn.LocalAddr().String()).Err(); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, c, follower, 0)
	if _, err := bufio.NewReader(conn).ReadString('\n'); err == nil {
		t.Fatal("a killed client read a reply")
	}

	// Clients leaving while elements arrive: every element is either
	// popped by a client that read it or still in the list.
	const rounds = 30
	var delivered []string
	for i := range rounds {
		key := fmt.Sprintf("race%02d", i) // a fresh key: r(i-1) may be back in the last
		conns := []net.Conn{raw(lead, key), raw(follower, key)}
		waitBlocked(t, c, lead, 1)
		waitBlocked(t, c, follower, 1)
		if err := lr.RPush(ctx, key, fmt.Sprintf("r%02d", i)).Err(); err != nil {
			t.Fatal(err)
		}
		// Both leave with the pop in flight, or before, or after: they
		// half-close (the server takes that as the client gone, as Redis
		// does), then read what the server answered before it saw them go.
		time.Sleep(time.Duration(i%4) * time.Millisecond)
		for _, cn := range conns {
			_ = cn.(*net.TCPConn).CloseWrite()
		}
		for _, cn := range conns {
			_ = cn.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, _ := io.ReadAll(cn)
			if f := strings.Split(string(b), "\r\n"); len(f) >= 5 {
				delivered = append(delivered, f[4])
			}
			cn.Close()
		}
		waitBlocked(t, c, lead, 0)
		waitBlocked(t, c, follower, 0)
	}
	all := delivered
	for i := range rounds {
		all = append(all, lr.LRange(ctx, fmt.Sprintf("race%02d", i), 0, -1).Val()...)
	}
	slices.Sort(all)
	if len(all) != rounds {
		t.Fatalf("elements left or delivered: %v, want r00 to r%02d once each", all, rounds-1)
	}
	for i, e := range all {
		if e != fmt.Sprintf("r%02d", i) {
			t.Fatalf("elements left or delivered: %v", all)
		}
	}
	t.Logf("%d of %d elements delivered before their client left, the rest still in their lists", len(delivered), rounds)
}

// TestBlockingLeaderKilledNoElementLostOrTwice: clients blocked on the two
// followers, producers pushing through them, and the leader killed
// mid-way: afterwards every element pushed was popped by exactly one
// client or is still in the list (an element whose push was answered
// with an unknown outcome may be missing, never twice).
func TestBlockingLeaderKilledNoElementLostOrTwice(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	fs := others(3, lead)
	ctx := ctxT(t, 120*time.Second)
	var (
		mu        sync.Mutex
		delivered = map[string]int{}
		popErrs   []error
	)
	var clients []*redis.Client
	for _, id := range fs {
		r := blockingClient(c, id, 2)
		defer r.Close()
		clients = append(clients, r)
	}
	stop := consume(clients, 4, func(r *redis.Client) ([]string, error) {
		return r.BRPop(ctx, time.Second, "kq").Result()
	}, func(kv []string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			popErrs = append(popErrs, err)
			time.Sleep(50 * time.Millisecond)
			return
		}
		delivered[kv[1]]++
	})
	for _, id := range fs {
		waitBlocked(t, c, id, 4)
	}
	var acked, unknown []string
	push := func(i int) {
		e := fmt.Sprintf("k%04d", i)
		err := c.client(fs[i%2]).LPush(ctx, "kq", e).Err()
		switch {
		case err == nil:
			acked = append(acked, e)
		case strings.HasPrefix(err.Error(), "TIMEOUT"), strings.Contains(err.Error(), "EOF"):
			unknown = append(unknown, e)
		default:
			// Certainly not run (CLUSTERDOWN, TRYAGAIN).
		}
	}
	const n = 300
	for i := range n {
		if i == n/3 {
			c.kill(lead)
		}
		push(i)
		time.Sleep(3 * time.Millisecond)
	}
	waitFor(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) >= len(acked)
	}, "the acknowledged elements delivered")
	time.Sleep(500 * time.Millisecond)
	stop()
	left := c.client(fs[0]).LRange(ctx, "kq", 0, -1).Val()
	seen := map[string]int{}
	for e, k := range delivered {
		seen[e] += k
	}
	for _, e := range left {
		seen[e]++
	}
	for e, k := range seen {
		if k > 1 {
			t.Errorf("%s delivered or left %d times", e, k)
		}
	}
	for _, e := range acked {
		if seen[e] != 1 {
			t.Errorf("acknowledged %s neither delivered nor left", e)
		}
	}
	for e := range seen {
		if !slices.Contains(acked, e) && !slices.Contains(unknown, e) {
			t.Errorf("%s delivered but never pushed", e)
		}
	}
	t.Logf("%d pushed and acknowledged, %d of unknown outcome; %d delivered, %d left; pop errors: %v",
		len(acked), len(unknown), len(delivered), len(left), popErrs)
}
