package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestCollectionsThroughGoRedis runs hashes, sets, sorted sets and lists
// through go-redis v9 against a follower (every write relayed to the
// leader), in RESP3 and RESP2, then reads the result on every node: each
// replica applied the same commands, random pops included.
func TestCollectionsThroughGoRedis(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	follower := others(3, lead)[0]
	for _, proto := range []int{3, 2} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			r := redis.NewClient(&redis.Options{Addr: c.clients[follower-1], Protocol: proto, MaxRetries: -1})
			defer r.Close()
			ctx := ctxT(t, 30*time.Second)
			p := fmt.Sprintf("p%d:", proto)
			k := func(s string) string { return p + s }
			fail := func(what string, got, want any) {
				t.Helper()
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s = %v, want %v", what, got, want)
				}
			}
			noErr := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}

			// Hashes.
			n, err := r.HSet(ctx, k("h"), "a", "1", "b", "2").Result()
			noErr(err)
			fail("HSET", n, 2)
			all, err := r.HGetAll(ctx, k("h")).Result()
			noErr(err)
			fail("HGETALL", all, map[string]string{"a": "1", "b": "2"})
			f, err := r.HIncrByFloat(ctx, k("h"), "a", 0.5).Result()
			noErr(err)
			fail("HINCRBYFLOAT", f, 1.5)
			typ, err := r.Type(ctx, k("h")).Result()
			noErr(err)
			fail("TYPE", typ, "hash")
			if err := r.Get(ctx, k("h")).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
				t.Fatalf("GET of a hash: %v, want WRONGTYPE", err)
			}

			// Sets.
			n, err = r.SAdd(ctx, k("s"), "x", "y", "z").Result()
			noErr(err)
			fail("SADD", n, 3)
			ms, err := r.SMembers(ctx, k("s")).Result()
			noErr(err)
			slices.Sort(ms)
			fail("SMEMBERS", ms, []string{"x", "y", "z"})
			popped, err := r.SPop(ctx, k("s")).Result()
			noErr(err)
			if !slices.Contains([]string{"x", "y", "z"}, popped) {
				t.Fatalf("SPOP = %q", popped)
			}

			// Sorted sets.
			n, err = r.ZAdd(ctx, k("z"), redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2.5, Member: "b"}, redis.Z{Score: 3, Member: "c"}).Result()
			noErr(err)
			fail("ZADD", n, 3)
			zs, err := r.ZRangeWithScores(ctx, k("z"), 0, -1).Result()
			noErr(err)
			fail("ZRANGE WITHSCORES", zs, []redis.Z{{Score: 1, Member: "a"}, {Score: 2.5, Member: "b"}, {Score: 3, Member: "c"}})
			byScore, err := r.ZRangeByScore(ctx, k("z"), &redis.ZRangeBy{Min: "(1", Max: "+inf"}).Result()
			noErr(err)
			fail("ZRANGEBYSCORE", byScore, []string{"b", "c"})
			rank, err := r.ZRank(ctx, k("z"), "c").Result()
			noErr(err)
			fail("ZRANK", rank, 2)
			score, err := r.ZScore(ctx, k("z"), "b").Result()
			noErr(err)
			fail("ZSCORE", score, 2.5)
			mins, err := r.ZPopMin(ctx, k("z"), 1).Result()
			noErr(err)
			fail("ZPOPMIN", mins, []redis.Z{{Score: 1, Member: "a"}})

			// Lists.
			n, err = r.RPush(ctx, k("l"), "1", "2", "3").Result()
			noErr(err)
			fail("RPUSH", n, 3)
			n, err = r.LPush(ctx, k("l"), "0").Result()
			noErr(err)
			fail("LPUSH", n, 4)
			l, err := r.LRange(ctx, k("l"), 0, -1).Result()
			noErr(err)
			fail("LRANGE", l, []string{"0", "1", "2", "3"})
			v, err := r.LMove(ctx, k("l"), k("l2"), "RIGHT", "LEFT").Result()
			noErr(err)
			fail("LMOVE", v, "3")
			v, err = r.LPop(ctx, k("l")).Result()
			noErr(err)
			fail("LPOP", v, "0")

			// A transaction over several types.
			cmds, err := r.TxPipelined(ctx, func(tx redis.Pipeliner) error {
				tx.HSet(ctx, k("tx"), "f", "v")
				tx.SAdd(ctx, k("txs"), "m")
				tx.Rename(ctx, k("tx"), k("tx2"))
				tx.HGet(ctx, k("tx2"), "f")
				return nil
			})
			noErr(err)
			fail("EXEC's HGET", cmds[3].(*redis.StringCmd).Val(), "v")
		})
	}
	// redis-cli runs each type too, through another node.
	if cli, err := exec.LookPath("redis-cli"); err == nil {
		_, port, _ := net.SplitHostPort(c.clients[lead-1])
		for _, step := range []struct{ args, want string }{
			{"HSET cli:h f v", "1"},
			{"HGET cli:h f", "v"},
			{"SADD cli:s a b", "2"},
			{"SCARD cli:s", "2"},
			{"ZADD cli:z 1.5 a", "1"},
			{"ZSCORE cli:z a", "1.5"},
			{"RPUSH cli:l x y", "2"},
			{"LRANGE cli:l 0 -1", "x\ny"},
			{"TYPE cli:z", "zset"},
			{"LPUSH cli:h x", "WRONGTYPE Operation against a key holding the wrong kind of value"},
		} {
			out, err := exec.Command(cli, append([]string{"-p", port}, strings.Fields(step.args)...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("redis-cli %s: %v\n%s", step.args, err, out)
			}
			if got := strings.TrimSpace(string(out)); got != step.want {
				t.Errorf("redis-cli %s = %q, want %q", step.args, got, step.want)
			}
		}
	}
	// Every node holds the same collections, the SPOPped set included.
	var want string
	for id := 1; id <= 3; id++ {
		cl := c.client(id)
		ctx := ctxT(t, 20*time.Second)
		noErr := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for _, proto := range []string{"p2:", "p3:"} {
			s, err := cl.SMembers(ctx, proto+"s").Result()
			noErr(err)
			slices.Sort(s)
			l, err := cl.LRange(ctx, proto+"l", 0, -1).Result()
			noErr(err)
			got = append(got, fmt.Sprint(s), fmt.Sprint(l))
		}
		if id == 1 {
			want = fmt.Sprint(got)
		} else if fmt.Sprint(got) != want {
			t.Fatalf("node %d holds %v, node 1 %v", id, got, want)
		}
	}
}

// TestCollectionsBenchmark runs redis-benchmark's collection tests
// against a follower to the end: every one must report a rate.
func TestCollectionsBenchmark(t *testing.T) {
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skip("redis-benchmark not installed (Debian's redis-tools)")
	}
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	_, port, _ := net.SplitHostPort(c.clients[others(3, lead)[0]-1])
	tests := []string{"LPUSH", "RPUSH", "LPOP", "RPOP", "SADD", "HSET", "SPOP", "ZADD", "ZPOPMIN", "LRANGE_100", "LRANGE_300", "LRANGE_500", "LRANGE_600", "MSET"}
	out, err := exec.Command(bench, "-h", "127.0.0.1", "-p", port, "-n", "300", "-c", "4", "-q",
		"-t", "lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange,mset").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	for _, test := range tests {
		if !strings.Contains(string(out), test+": ") && !strings.Contains(string(out), test+" (") {
			t.Errorf("redis-benchmark output lacks %s:\n%s", test, out)
		}
	}
}
