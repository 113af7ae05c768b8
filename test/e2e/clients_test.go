package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestGoRedisBothProtocols runs the string, key, expiry, database and
// transaction commands through go-redis v9 against a follower (so every
// write is relayed to the leader), once with its default protocol (HELLO
// 3, RESP3) and once with Protocol 2, checking typed results.
func TestGoRedisBothProtocols(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	follower := others(3, lead)[0]
	for _, proto := range []int{3, 2} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			r := redis.NewClient(&redis.Options{Addr: c.clients[follower-1], Protocol: proto, MaxRetries: -1, DB: 2})
			defer r.Close()
			ctx := ctxT(t, 30*time.Second)
			check := func(what string, got, want any, err error) {
				t.Helper()
				if err != nil && !errors.Is(err, redis.Nil) {
					t.Fatalf("%s: %v", what, err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s = %v, want %v", what, got, want)
				}
			}
			p := fmt.Sprintf("p%d:", proto)
			k := func(s string) string { return p + s }
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(r.FlushDB(ctx).Err())
			v1, err := r.Set(ctx, k("s"), "hello", 0).Result()
			check("SET", v1, "OK", err)
			v2, err := r.SetArgs(ctx, k("s"), "world", redis.SetArgs{Mode: "XX", Get: true}).Result()
			check("SET XX GET", v2, "hello", err)
			v3, err := r.SetNX(ctx, k("s"), "x", 0).Result()
			check("SETNX", v3, false, err)
			v4, err := r.SetEx(ctx, k("ex"), "v", time.Hour).Result()
			check("SETEX", v4, "OK", err)
			ttl, err := r.TTL(ctx, k("ex")).Result()
			if err != nil || ttl < 59*time.Minute || ttl > time.Hour {
				t.Fatalf("TTL = %v, %v", ttl, err)
			}
			v5, err := r.GetSet(ctx, k("s"), "again").Result()
			check("GETSET", v5, "world", err)
			v6, err := r.GetEx(ctx, k("s"), time.Minute).Result()
			check("GETEX", v6, "again", err)
			v7, err := r.Persist(ctx, k("s")).Result()
			check("PERSIST", v7, true, err)
			v8, err := r.MSet(ctx, k("a"), "1", k("b"), "2").Result()
			check("MSET", v8, "OK", err)
			v9, err := r.MGet(ctx, k("a"), k("b"), k("none")).Result()
			check("MGET", v9, []any{"1", "2", nil}, err)
			v10, err := r.MSetNX(ctx, k("a"), "9", k("c"), "3").Result()
			check("MSETNX", v10, false, err)
			v11, err := r.Append(ctx, k("a"), "23").Result()
			check("APPEND", v11, 3, err)
			v12, err := r.StrLen(ctx, k("a")).Result()
			check("STRLEN", v12, 3, err)
			v13, err := r.GetRange(ctx, k("a"), 1, -1).Result()
			check("GETRANGE", v13, "23", err)
			v14, err := r.SetRange(ctx, k("a"), 5, "x").Result()
			check("SETRANGE", v14, 6, err)
			v15, err := r.Incr(ctx, k("n")).Result()
			check("INCR", v15, 1, err)
			v16, err := r.IncrBy(ctx, k("n"), 10).Result()
			check("INCRBY", v16, 11, err)
			v17, err := r.DecrBy(ctx, k("n"), 2).Result()
			check("DECRBY", v17, 9, err)
			v18, err := r.IncrByFloat(ctx, k("f"), 10.5).Result()
			check("INCRBYFLOAT", v18, 10.5, err)
			v19, err := r.SetBit(ctx, k("bits"), 7, 1).Result()
			check("SETBIT", v19, 0, err)
			v20, err := r.GetBit(ctx, k("bits"), 7).Result()
			check("GETBIT", v20, 1, err)
			v21, err := r.BitCount(ctx, k("bits"), nil).Result()
			check("BITCOUNT", v21, 1, err)
			v22, err := r.BitPos(ctx, k("bits"), 1).Result()
			check("BITPOS", v22, 7, err)
			v23, err := r.GetDel(ctx, k("b")).Result()
			check("GETDEL", v23, "2", err)
			v24, err := r.Exists(ctx, k("a"), k("b")).Result()
			check("EXISTS", v24, 1, err)
			v25, err := r.Type(ctx, k("a")).Result()
			check("TYPE", v25, "string", err)
			v26, err := r.Rename(ctx, k("a"), k("a2")).Result()
			check("RENAME", v26, "OK", err)
			v27, err := r.RenameNX(ctx, k("a2"), k("s")).Result()
			check("RENAMENX", v27, false, err)
			v28, err := r.Copy(ctx, k("a2"), k("a3"), 2, false).Result()
			check("COPY", v28, 1, err)
			keys, err := r.Keys(ctx, k("a*")).Result()
			sort.Strings(keys)
			check("KEYS", keys, []string{k("a2"), k("a3")}, err)
			var scanned []string
			iter := r.Scan(ctx, 0, p+"*", 3).Iterator()
			for iter.Next(ctx) {
				scanned = append(scanned, iter.Val())
			}
			must(iter.Err())
			n, err := r.DBSize(ctx).Result()
			check("SCAN count", len(scanned), n, err)
			rk, err := r.RandomKey(ctx).Result()
			if err != nil || !strings.HasPrefix(rk, p) {
				t.Fatalf("RANDOMKEY = %q, %v", rk, err)
			}
			v29, err := r.Touch(ctx, k("a2"), k("none")).Result()
			check("TOUCH", v29, 1, err)
			v30, err := r.Expire(ctx, k("a2"), time.Hour).Result()
			check("EXPIRE", v30, true, err)
			v31, err := r.ExpireGT(ctx, k("a2"), time.Minute).Result()
			check("EXPIRE GT", v31, false, err)
			pttl, err := r.PTTL(ctx, k("a2")).Result()
			if err != nil || pttl <= 59*time.Minute {
				t.Fatalf("PTTL = %v, %v", pttl, err)
			}
			et, err := r.ExpireTime(ctx, k("a2")).Result()
			if err != nil || et < time.Duration(time.Now().Unix())*time.Second {
				t.Fatalf("EXPIRETIME = %v, %v", et, err)
			}
			v32, err := r.PExpireAt(ctx, k("a3"), time.Now().Add(-time.Second)).Result()
			check("PEXPIREAT in the past", v32, true, err)
			v33, err := r.Get(ctx, k("a3")).Result()
			check("GET after PEXPIREAT in the past", v33, "", err)
			v34, err := r.Move(ctx, k("a2"), 3).Result()
			check("MOVE", v34, true, err)
			v35, err := r.Unlink(ctx, k("n"), k("f")).Result()
			check("UNLINK", v35, 2, err)
			v36, err := r.Del(ctx, k("bits")).Result()
			check("DEL", v36, 1, err)

			// MULTI/EXEC through a pipeline, and WATCH aborting it.
			cmds, err := r.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Set(ctx, k("tx"), "1", 0)
				pipe.Incr(ctx, k("tx"))
				pipe.Get(ctx, k("tx"))
				return nil
			})
			must(err)
			check("EXEC GET", cmds[2].(*redis.StringCmd).Val(), "2", nil)
			err = r.Watch(ctx, func(tx *redis.Tx) error {
				if err := r.Set(ctx, k("tx"), "changed", 0).Err(); err != nil {
					return err
				}
				_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
					pipe.Set(ctx, k("tx"), "lost", 0)
					return nil
				})
				return err
			}, k("tx"))
			if !errors.Is(err, redis.TxFailedErr) {
				t.Fatalf("EXEC after a watched key changed: %v, want TxFailedErr", err)
			}
			v37, err := r.Get(ctx, k("tx")).Result()
			check("GET after the aborted EXEC", v37, "changed", err)

			// Errors in Redis's words.
			if err := r.Incr(ctx, k("s")).Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
				t.Fatalf("INCR of a string: %v", err)
			}
			v38, err := r.Do(ctx, "SWAPDB", 2, 3).Result()
			check("SWAPDB", v38, "OK", err)
			v39, err := r.Get(ctx, k("a2")).Result()
			check("GET after SWAPDB", v39, "123\x00\x00x", err)

			// The rest of the string and expiry commands, and the server
			// commands whose RESP3 replies are maps, sets or verbatim text.
			must(r.Do(ctx, "PSETEX", k("ps"), 100000, "v").Err())
			v40, err := r.Decr(ctx, k("d")).Result()
			check("DECR", v40, -1, err)
			v41, err := r.Do(ctx, "SUBSTR", k("a2"), 0, 2).Text()
			check("SUBSTR", v41, "123", err)
			v42, err := r.ExpireAt(ctx, k("d"), time.Now().Add(time.Hour)).Result()
			check("EXPIREAT", v42, true, err)
			v43, err := r.PExpire(ctx, k("d"), time.Minute).Result()
			check("PEXPIRE", v43, true, err)
			pet, err := r.PExpireTime(ctx, k("d")).Result()
			if err != nil || pet < time.Duration(time.Now().UnixMilli())*time.Millisecond {
				t.Fatalf("PEXPIRETIME = %v, %v", pet, err)
			}
			all, err := r.Keys(ctx, "*").Result()
			must(err)
			v44, err := r.DBSize(ctx).Result()
			check("DBSIZE against KEYS *", v44, len(all), err)
			id, err := r.ClientID(ctx).Result()
			if err != nil || id <= 0 {
				t.Fatalf("CLIENT ID = %d, %v", id, err)
			}
			list, err := r.ClientList(ctx).Result()
			if err != nil || !strings.Contains(list, fmt.Sprintf("id=%d ", id)) || !strings.Contains(list, fmt.Sprintf("resp=%d", proto)) {
				t.Fatalf("CLIENT LIST = %q, %v", list, err)
			}
			cfg, err := r.ConfigGet(ctx, "databases").Result()
			check("CONFIG GET databases", cfg, map[string]string{"databases": "16"}, err)
			n, err = r.Do(ctx, "COMMAND", "COUNT").Int64()
			if err != nil || n < 70 {
				t.Fatalf("COMMAND COUNT = %d, %v", n, err)
			}
			stats, err := r.Info(ctx, "commandstats").Result()
			if err != nil || !strings.Contains(stats, "cmdstat_set:calls=") {
				t.Fatalf("INFO commandstats = %q, %v", stats, err)
			}
			now, err := r.Time(ctx).Result()
			if err != nil || time.Since(now).Abs() > time.Minute {
				t.Fatalf("TIME = %v, %v", now, err)
			}
			must(r.FlushAll(ctx).Err())
		})
	}
}

// TestRedisCLIPipeAndBenchmark: redis-cli --pipe loads a protocol stream
// through a follower, redis-cli's hints come from COMMAND DOCS, and
// redis-benchmark runs its default tests for the commands Seshat has.
func TestRedisCLIPipeAndBenchmark(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed (Debian's redis-tools)")
	}
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	follower := others(3, lead)[0]
	_, port, _ := net.SplitHostPort(c.clients[follower-1])
	var stream bytes.Buffer
	for i := range 2000 {
		k, v := fmt.Sprintf("pipe:%d", i), fmt.Sprintf("v%d", i)
		fmt.Fprintf(&stream, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
	}
	cmd := exec.Command(cli, "-h", "127.0.0.1", "-p", port, "--pipe")
	cmd.Stdin = &stream
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "errors: 0, replies: 2000") {
		t.Fatalf("redis-cli --pipe: %v\n%s", err, out)
	}
	ctx := ctxT(t, 20*time.Second)
	if n, err := c.client(lead).DBSize(ctx).Result(); err != nil || n != 2000 {
		t.Fatalf("DBSIZE after --pipe = %d, %v", n, err)
	}
	// What redis-cli asks for its hints.
	docs, err := c.client(follower).Do(ctx, "COMMAND", "DOCS", "set").Result()
	if err != nil || !strings.Contains(fmt.Sprint(docs), "set") {
		t.Fatalf("COMMAND DOCS set = %v, %v", docs, err)
	}
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skip("redis-benchmark not installed (Debian's redis-tools)")
	}
	out, err = exec.Command(bench, "-h", "127.0.0.1", "-p", port, "-n", "300", "-c", "4", "-q",
		"-t", "ping_inline,ping_mbulk,set,get,incr,mset").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	for _, test := range []string{"PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET"} {
		if !strings.Contains(string(out), test+": ") && !strings.Contains(string(out), test+" (") {
			t.Errorf("redis-benchmark output lacks %s:\n%s", test, out)
		}
	}
}

// With --requirepass every node asks for AUTH, and writes sent to a
// follower still reach the leader (the relay authenticates too).
func TestRequirePass(t *testing.T) {
	c := newCluster(t, 3, "--requirepass", "s3cret")
	ctx := ctxT(t, 30*time.Second)
	var lead int
	for deadline := time.Now().Add(10 * time.Second); lead == 0; {
		for id := 1; id <= 3; id++ {
			r := redis.NewClient(&redis.Options{Addr: c.clients[id-1], Password: "s3cret"})
			s, err := r.Info(ctx, "replication").Result()
			r.Close()
			if err == nil && strings.Contains(s, "raft_role:leader") {
				lead = id
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	follower := others(3, lead)[0]
	anon := redis.NewClient(&redis.Options{Addr: c.clients[follower-1], MaxRetries: -1})
	defer anon.Close()
	if err := anon.Set(ctx, "k", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("SET without AUTH: %v, want NOAUTH", err)
	}
	bad := redis.NewClient(&redis.Options{Addr: c.clients[follower-1], Password: "wrong", MaxRetries: -1})
	defer bad.Close()
	if err := bad.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Fatalf("PING with a wrong password: %v, want WRONGPASS", err)
	}
	good := redis.NewClient(&redis.Options{Addr: c.clients[follower-1], Password: "s3cret", MaxRetries: -1})
	defer good.Close()
	if err := good.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through follower %d with AUTH: %v", follower, err)
	}
	if v, err := good.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET = %q, %v", v, err)
	}
}

// In --redirect mode CLUSTER SLOTS describes the leader as the one master,
// so go-redis's cluster client sends writes to it on its own, and after a
// leader change follows the MOVED of the old leader, now a follower.
func TestClusterClientFollowsTheLeader(t *testing.T) {
	c := newCluster(t, 3, "--redirect")
	lead := c.leader(10 * time.Second)
	ctx := ctxT(t, 40*time.Second)
	// A dead master costs a cluster client connection errors until its
	// periodic reload of CLUSTER SLOTS (as with Redis Cluster); a short
	// interval keeps the test short.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.clients, MaxRedirects: 8, ClusterStateReloadInterval: 200 * time.Millisecond})
	defer cc.Close()
	for i := range 50 {
		if err := cc.Set(ctx, fmt.Sprint("cc", i), i, 0).Err(); err != nil {
			t.Fatalf("SET %d through the cluster client: %v", i, err)
		}
	}
	c.kill(lead)
	newLead := c.leader(10*time.Second, others(3, lead)...)
	t.Logf("leader %d killed; node %d leads", lead, newLead)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cc.Set(ctx, "after", "v", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SET after the leader change: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 50 {
		if v, err := cc.Get(ctx, fmt.Sprint("cc", i)).Int(); err != nil || v != i {
			t.Fatalf("GET cc%d = %d, %v", i, v, err)
		}
	}
}

// A SCAN cursor means the same on every node: a scan that moves from node
// to node at every step, and across a SIGKILL of the leader, returns every
// key that was there for the whole scan.
func TestScanAcrossNodesAndLeaderChange(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	ctx := ctxT(t, 40*time.Second)
	want := map[string]bool{}
	pipe := c.client(lead).Pipeline()
	for i := range 300 {
		k := fmt.Sprint("scan:", i)
		want[k] = true
		pipe.Set(ctx, k, i, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	var cursor uint64
	alive := []int{1, 2, 3}
	for step := 0; ; step++ {
		if step == 5 {
			c.kill(lead)
			alive = others(3, lead)
			c.leader(10*time.Second, alive...)
		}
		id := alive[step%len(alive)]
		keys, next, err := c.client(id).Scan(ctx, cursor, "scan:*", 20).Result()
		if err != nil {
			t.Fatalf("SCAN %d on node %d: %v", cursor, id, err)
		}
		for _, k := range keys {
			got[k] = true
		}
		if cursor = next; cursor == 0 {
			break
		}
		if step > 1000 {
			t.Fatal("the scan does not end")
		}
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("key %s missing from a scan across nodes (%d of %d returned)", k, len(got), len(want))
		}
	}
}

// redis-cli's interactive hints come from COMMAND DOCS: typed at a real
// terminal (script(1) gives redis-cli a pty), "CLIENT SETINFO " shows the
// arguments Seshat documents (redis-cli 7.0 has no hint of its own for
// that subcommand, so the hint can only come from the server).
func TestRedisCLIHints(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed (Debian's redis-tools)")
	}
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) not installed (Debian's bsdutils)")
	}
	c := newCluster(t, 3)
	c.leader(10 * time.Second)
	_, port, _ := net.SplitHostPort(c.clients[0])
	cmd := exec.Command(script, "-qfc", cli+" -p "+port, "/dev/null")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// linenoise asks the terminal for the cursor position twice (to learn
	// its width): answer as a terminal would, then type.
	time.Sleep(500 * time.Millisecond)
	io.WriteString(in, "\x1b[1;1R")
	time.Sleep(200 * time.Millisecond)
	io.WriteString(in, "\x1b[1;200R")
	time.Sleep(500 * time.Millisecond)
	io.WriteString(in, "CLIENT SETINFO ")
	time.Sleep(time.Second)
	io.WriteString(in, "\x03")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	if !strings.Contains(out.String(), "LIB-NAME libname|LIB-VER libver") {
		t.Fatalf("no hint from COMMAND DOCS after typing CLIENT SETINFO; the terminal showed:\n%q", out.String())
	}
}
