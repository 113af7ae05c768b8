package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// runSeshatd runs a seshatd subcommand to its end and returns its exit
// code and output.
func runSeshatd(t *testing.T, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, seshatd, args...)
	cmd.Env = append(os.Environ(), "SESHAT_REQUIREPASS=") // no password from the environment
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("seshatd %s: did not finish in %v:\n%s", args[0], timeout, out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("seshatd %s: %v", args[0], err)
	}
	return code, string(out)
}

// restoredCluster is a one-node cluster over data dir dir/1, which
// `seshatd restore` built.
func restoredCluster(t *testing.T, dir string) *cluster {
	addrs := freeAddrs(t, 2)
	c := &cluster{t: t, n: 1, dir: dir, clients: addrs[:1], peers: addrs[1:],
		procs: map[int]*proc{}, logs: map[int]*os.File{}, rdb: map[int]*redis.Client{},
		created: map[int]bool{1: true}} // restore gave the data dir its identity: no --bootstrap
	t.Cleanup(c.cleanup)
	c.start(1)
	return c
}

// TestBackupUnderWritesRestoresIntoNewCluster: a backup taken from a
// follower of a 3-node cluster under continuous writes holds every key
// acknowledged before it began; restored into a new data dir it starts as
// a one-node cluster that serves them and takes writes; a damaged copy of
// the file is refused and leaves no data dir behind.
func TestBackupUnderWritesRestoresIntoNewCluster(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	ctx := ctxT(t, 90*time.Second)

	// A base of keys, a hash and a key with a deadline far away.
	base := map[string]string{}
	pipe := c.client(lead).Pipeline()
	for i := range 3000 {
		k, v := fmt.Sprintf("base-%d", i), fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i%50))
		base[k] = v
		pipe.Set(ctx, k, v, 0)
	}
	pipe.HSet(ctx, "h", "f1", "a", "f2", "b")
	pipe.Set(ctx, "ttl", "t", time.Hour)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}

	// Continuous writes through the leader and a follower.
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	w := &writer{acked: map[string]string{}}
	follower := others(3, lead)[0]
	done := make(chan struct{}, 2)
	go func() { w.run(wctx, c.client(lead), "wl", 1_000_000, 0); done <- struct{}{} }()
	go func() { w.run(wctx, c.client(follower), "wf", 1_000_000, 0); done <- struct{}{} }()
	// Some writes acknowledged first (a loaded machine may take seconds).
	var before map[string]string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if before, _ = w.snapshot(); len(before) >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged in 30s", len(before))
		}
	}
	backupFrom := others(3, lead)[1] // the other follower
	file := filepath.Join(t.TempDir(), "seshat.backup")
	code, out := runSeshatd(t, 60*time.Second, "backup", "--from", c.clients[backupFrom-1], "--out", file)
	if code != 0 {
		t.Fatalf("backup: exit %d:\n%s", code, out)
	}
	time.Sleep(200 * time.Millisecond) // writes go on after the backup too
	stop()
	<-done
	<-done
	after, errs := w.snapshot()
	t.Logf("acknowledged: %d before the backup, %d in all; write errors: %d", len(before), len(after), len(errs))
	if code, out := runSeshatd(t, 10*time.Second, "backup", "--from", c.clients[backupFrom-1], "--out", file); code != 2 || !strings.Contains(out, "exists") {
		t.Errorf("backup over an existing file: exit %d:\n%s", code, out)
	}

	// Damaged copies are refused, and nothing is written.
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x01
	future := bytes.Clone(good)
	future[11]++ // the format version's low byte
	damaged := map[string][]byte{
		"future version": future,
		"flipped":        flipped,
		"truncated":      good[:len(good)-100],
		"halved":         good[:len(good)/2],
		"not a backup":   append([]byte("REDIS0011"), good[9:]...),
	}
	wantErr := map[string]string{
		"future version": "restore with a newer seshatd",
		"flipped":        "SHA-256 mismatch", "truncated": "truncated", "halved": "truncated", "not a backup": "not a Seshat backup file",
	}
	for name, b := range damaged {
		bad := filepath.Join(t.TempDir(), "bad.backup")
		if err := os.WriteFile(bad, b, 0o644); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "restored")
		code, out := runSeshatd(t, 30*time.Second, "restore", "--in", bad, "--data-dir", dir, "--id", "1")
		if code != 1 || !strings.Contains(out, "refused, nothing written") || !strings.Contains(out, wantErr[name]) {
			t.Errorf("%s file: exit %d, want 1 saying %q:\n%s", name, code, wantErr[name], out)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s file: %s exists after a refused restore", name, dir)
		}
		if ents, _ := os.ReadDir(filepath.Dir(dir)); len(ents) != 0 {
			t.Errorf("%s file: left %d entries beside the data dir", name, len(ents))
		}
	}

	// The good file restores into a new one-node cluster.
	rdir := t.TempDir()
	code, out = runSeshatd(t, 60*time.Second, "restore", "--in", file, "--data-dir", filepath.Join(rdir, "1"), "--id", "1")
	if code != 0 {
		t.Fatalf("restore: exit %d:\n%s", code, out)
	}
	if code, out := runSeshatd(t, 10*time.Second, "restore", "--in", file, "--data-dir", filepath.Join(rdir, "1"), "--id", "1"); code != 2 || !strings.Contains(out, "not empty") {
		t.Errorf("restore into a used data dir: exit %d:\n%s", code, out)
	}
	r := restoredCluster(t, rdir)
	r.leader(10 * time.Second)
	checkAll(t, r, 1, base)
	checkAll(t, r, 1, before)
	rctx := ctxT(t, 20*time.Second)
	if h, err := r.client(1).HGetAll(rctx, "h").Result(); err != nil || h["f1"] != "a" || h["f2"] != "b" || len(h) != 2 {
		t.Errorf("hash h after restore: %v, %v", h, err)
	}
	if ttl, err := r.client(1).TTL(rctx, "ttl").Result(); err != nil || ttl < 50*time.Minute {
		t.Errorf("TTL ttl after restore: %v, %v", ttl, err)
	}
	n, err := r.client(1).DBSize(rctx).Result()
	if err != nil || n < int64(len(base)+len(before)+2) || n > int64(len(base)+len(after)+2) {
		t.Errorf("DBSIZE after restore: %d (%v), want between %d and %d", n, err, len(base)+len(before)+2, len(base)+len(after)+2)
	}
	if err := r.client(1).Set(rctx, "after-restore", "yes", 0).Err(); err != nil {
		t.Fatalf("SET on the restored cluster: %v", err)
	}
	if v, err := r.client(1).Get(rctx, "after-restore").Result(); err != nil || v != "yes" {
		t.Fatalf("GET after-restore: %q, %v", v, err)
	}
}

// TestBackupMeasure measures backup and restore of N keys on a one-node
// cluster (replication plays no part in either): wall time, CPU and peak
// memory of the seshatd backup and restore processes, and the file size.
// Run only when SESHAT_BACKUP_MEASURE=N is set:
//
//	SESHAT_BACKUP_MEASURE=1000000 go test -count=1 -v -run TestBackupMeasure ./test/e2e
func TestBackupMeasure(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SESHAT_BACKUP_MEASURE"))
	if n <= 0 {
		t.Skip("set SESHAT_BACKUP_MEASURE=N to measure with N keys")
	}
	c := newCluster(t, 1, "--no-sync")
	c.leader(10 * time.Second)
	ctx := ctxT(t, 30*time.Minute)
	val := strings.Repeat("v", 100)
	for i := 0; i < n; i += 1000 {
		pipe := c.client(1).Pipeline()
		for j := i; j < min(i+1000, n); j++ {
			pipe.Set(ctx, "key:"+strconv.Itoa(j), val, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rss := func() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.procs[1].cmd.Process.Pid))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "VmRSS") {
				t.Log("server " + strings.Join(strings.Fields(l), " "))
			}
		}
	}
	rss()
	// serverCPU is the server's user+system CPU time so far.
	serverCPU := func() time.Duration {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.procs[1].cmd.Process.Pid))
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		utime, _ := strconv.Atoi(f[11])
		stime, _ := strconv.Atoi(f[12])
		return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ 100
	}
	file := filepath.Join(t.TempDir(), "m.backup")
	measure := func(what string, args ...string) {
		if what == "backup" { // restore does not touch the server
			cpu0 := serverCPU()
			defer func() { t.Logf("backup: server CPU %v", serverCPU()-cpu0) }()
		}
		start := time.Now()
		cmd := exec.CommandContext(ctx, seshatd, args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		ps := cmd.ProcessState
		ru, _ := ps.SysUsage().(*syscall.Rusage)
		maxRSS := int64(0)
		if ru != nil {
			maxRSS = ru.Maxrss
		}
		t.Logf("%s of %d keys: %v wall, %v user + %v sys CPU, peak RSS %d MiB",
			what, n, time.Since(start).Round(time.Millisecond), ps.UserTime().Round(time.Millisecond), ps.SystemTime().Round(time.Millisecond), maxRSS>>10)
	}
	measure("backup", "backup", "--from", c.clients[0], "--out", file)
	rss()
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("file: %d bytes (%.1f bytes per key)", st.Size(), float64(st.Size())/float64(n))
	measure("restore", "restore", "--in", file, "--data-dir", filepath.Join(t.TempDir(), "r"), "--id", "1")
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("load average: %s", strings.TrimSpace(string(load)))
}

// TestBackupOverTLSWithPassword: seshatd backup reaches a node that serves
// clients over TLS only, with client certificates and requirepass; a wrong
// password is refused with the node's error and leaves no file.
func TestBackupOverTLSWithPassword(t *testing.T) {
	f := newTLSFiles(t)
	tlsAddr := freeAddrs(t, 1)[0]
	newClusterWith(t, 1, func(int) []string { return f.flags(tlsAddr, "yes") }, "--requirepass", "sesame")
	ctx := ctxT(t, 60*time.Second)
	r := f.tlsClient(t, tlsAddr, true)
	if err := r.Do(ctx, "AUTH", "sesame").Err(); err != nil {
		t.Fatal(err)
	}
	// INFO needs the password, so c.leader cannot wait: the first write does.
	for deadline := time.Now().Add(10 * time.Second); r.Set(ctx, "first", "1", 0).Err() != nil; {
		if time.Now().After(deadline) {
			t.Fatal("no write taken within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := map[string]string{"first": "1"}
	for i := range 50 {
		k, v := fmt.Sprintf("tls-%d", i), fmt.Sprintf("v%d", i)
		want[k] = v
		if err := r.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "tls.backup")
	tlsArgs := []string{"--from", tlsAddr, "--tls", "--tls-ca", f.caFile, "--tls-cert", f.client.CertFile, "--tls-key", f.client.KeyFile}
	code, out := runSeshatd(t, 30*time.Second, append([]string{"backup", "--out", file, "--password", "wrong"}, tlsArgs...)...)
	if code != 1 || !strings.Contains(out, "WRONGPASS") {
		t.Errorf("backup with a wrong password: exit %d:\n%s", code, out)
	}
	if ents, _ := os.ReadDir(filepath.Dir(file)); len(ents) != 0 {
		t.Errorf("a failed backup left %v", ents)
	}
	code, out = runSeshatd(t, 30*time.Second, append([]string{"backup", "--out", file, "--password", "sesame"}, tlsArgs...)...)
	if code != 0 {
		t.Fatalf("backup over TLS: exit %d:\n%s", code, out)
	}
	rdir := t.TempDir()
	if code, out := runSeshatd(t, 30*time.Second, "restore", "--in", file, "--data-dir", filepath.Join(rdir, "1"), "--id", "1"); code != 0 {
		t.Fatalf("restore: exit %d:\n%s", code, out)
	}
	rc := restoredCluster(t, rdir)
	rc.leader(10 * time.Second)
	checkAll(t, rc, 1, want)
}
