package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seshat-kv/seshat/test/certs"
)

// tlsFiles are a CA, a server certificate for 127.0.0.1 and a client
// certificate, written to a temporary directory.
type tlsFiles struct {
	ca             *certs.Authority
	caFile         string
	server, client certs.Pair
	dir            string
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	f := &tlsFiles{ca: certs.NewAuthority(t, "seshat e2e CA"), dir: t.TempDir()}
	f.caFile = f.ca.WriteCA(t, f.dir, "ca.crt")
	f.server, f.client = f.ca.Issue(t, "seshat node"), f.ca.Issue(t, "e2e client")
	f.server.Write(t, f.dir, "server")
	f.client.Write(t, f.dir, "client")
	return f
}

// flags are a node's TLS flags, listening on addr.
func (f *tlsFiles) flags(addr, auth string) []string {
	return []string{"--tls-port", addr, "--tls-cert", f.server.CertFile, "--tls-key", f.server.KeyFile,
		"--tls-ca", f.caFile, "--tls-auth-clients", auth}
}

// tlsClient is a go-redis client of addr over TLS, with the client
// certificate when withCert.
func (f *tlsFiles) tlsClient(t *testing.T, addr string, withCert bool) *redis.Client {
	cfg := &tls.Config{RootCAs: f.ca.Pool(), ServerName: "127.0.0.1"}
	if withCert {
		cfg.Certificates = []tls.Certificate{f.client.TLS(t)}
	}
	r := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: cfg, MaxRetries: -1, DialTimeout: 2 * time.Second})
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// basicCases runs SET, GET, INCR and a MULTI/EXEC transaction through r.
func basicCases(ctx context.Context, t *testing.T, r *redis.Client, prefix string) {
	t.Helper()
	if err := r.Set(ctx, prefix+"k", "v", 0).Err(); err != nil {
		t.Fatalf("SET over TLS: %v", err)
	}
	if v, err := r.Get(ctx, prefix+"k").Result(); err != nil || v != "v" {
		t.Fatalf("GET over TLS = %q, %v", v, err)
	}
	if n, err := r.Incr(ctx, prefix+"n").Result(); err != nil || n != 1 {
		t.Fatalf("INCR over TLS = %d, %v", n, err)
	}
	var incr *redis.IntCmd
	var get *redis.StringCmd
	if _, err := r.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, prefix+"n")
		get = p.Get(ctx, prefix+"k")
		return nil
	}); err != nil {
		t.Fatalf("MULTI/EXEC over TLS: %v", err)
	}
	if incr.Val() != 2 || get.Val() != "v" {
		t.Fatalf("MULTI/EXEC over TLS: INCR %d, GET %q", incr.Val(), get.Val())
	}
}

// A 3-node cluster serving TLS beside plain RESP, with client certificates
// required: go-redis and redis-cli run the basic cases over TLS on the
// leader and on a follower (which forwards the writes); a client without a
// trusted certificate is refused.
func TestTLSClients(t *testing.T) {
	f := newTLSFiles(t)
	tlsAddrs := freeAddrs(t, 3)
	c := newClusterWith(t, 3, func(id int) []string { return f.flags(tlsAddrs[id-1], "yes") })
	lead := c.leader(10 * time.Second)
	ctx := ctxT(t, 60*time.Second)
	for _, id := range []int{lead, others(3, lead)[0]} {
		basicCases(ctx, t, f.tlsClient(t, tlsAddrs[id-1], true), fmt.Sprintf("node%d:", id))
	}

	noCert := f.tlsClient(t, tlsAddrs[lead-1], false)
	if err := noCert.Ping(ctx).Err(); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	stranger := certs.NewAuthority(t, "another CA").Issue(t, "stranger")
	r := redis.NewClient(&redis.Options{Addr: tlsAddrs[lead-1], MaxRetries: -1, TLSConfig: &tls.Config{
		RootCAs: f.ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{stranger.TLS(t)}}})
	defer r.Close()
	if err := r.Ping(ctx).Err(); err == nil {
		t.Fatal("a client with a certificate of another CA was served")
	}
	if err := c.client(lead).Ping(ctx).Err(); err != nil {
		t.Fatalf("plain port beside TLS: %v", err)
	}

	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed (Debian's redis-tools); go-redis cases passed")
	}
	host, port, _ := net.SplitHostPort(tlsAddrs[others(3, lead)[0]-1])
	cliRun := func(stdin string, withCert bool, args ...string) (string, error) {
		base := []string{"--tls", "--cacert", f.caFile, "-h", host, "-p", port}
		if withCert {
			base = append(base, "--cert", f.client.CertFile, "--key", f.client.KeyFile)
		}
		cmd := exec.CommandContext(ctx, cli, append(base, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"SET", "cli", "hello"}, "OK"},
		{[]string{"GET", "cli"}, "hello"},
		{[]string{"INCR", "cli-n"}, "1"},
	} {
		if got, err := cliRun("", true, tc.args...); err != nil || got != tc.want {
			t.Fatalf("redis-cli --tls %v = %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
	// One connection, commands from stdin: a transaction.
	got, err := cliRun("MULTI\nINCR cli-n\nGET cli\nEXEC\n", true)
	if want := "OK\nQUEUED\nQUEUED\n2\nhello"; err != nil || got != want {
		t.Fatalf("redis-cli --tls MULTI/EXEC = %q, %v; want %q", got, err, want)
	}
	if got, err := cliRun("", false, "PING"); err == nil && got == "PONG" {
		t.Fatal("redis-cli without a client certificate was served")
	}
}

// servedSerial returns the serial number of the certificate addr serves
// to a new connection.
func servedSerial(t *testing.T, f *tlsFiles, addr string) *big.Int {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: f.ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// A certificate rotated on disk is served to new connections without a
// restart, when the files change and on SIGHUP; connections made before
// carry on.
func TestTLSCertificateRotation(t *testing.T) {
	f := newTLSFiles(t)
	tlsAddr := freeAddrs(t, 1)[0]
	c := newClusterWith(t, 1, nil, f.flags(tlsAddr, "no")...)
	c.leader(10 * time.Second)
	ctx := ctxT(t, 60*time.Second)
	if got := servedSerial(t, f, tlsAddr); got.Cmp(f.server.Serial) != 0 {
		t.Fatalf("serving serial %v, want %v", got, f.server.Serial)
	}
	before := f.tlsClient(t, tlsAddr, false)
	if err := before.Set(ctx, "k", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	pid := c.procs[1].cmd.Process.Pid
	c.mu.Unlock()

	rotate := func(name string, after func()) {
		t.Helper()
		next := f.ca.Issue(t, name)
		next.Write(t, f.dir, "server")
		after()
		deadline := time.Now().Add(10 * time.Second)
		for servedSerial(t, f, tlsAddr).Cmp(next.Serial) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the rotated certificate not served after 10s", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	rotate("rotated on disk", func() {})
	rotate("rotated with SIGHUP", func() { c.signal(1, syscall.SIGHUP) })

	if v, err := before.Get(ctx, "k").Result(); err != nil || v != "1" {
		t.Fatalf("connection made before the rotations: %q, %v", v, err)
	}
	c.mu.Lock()
	same := c.procs[1] != nil && c.procs[1].cmd.Process.Pid == pid
	c.mu.Unlock()
	if !same {
		t.Fatal("the node restarted")
	}
	logs, _ := os.ReadFile(filepath.Join(c.dir, "node1.log"))
	if !strings.Contains(string(logs), "TLS certificates reloaded") {
		t.Fatalf("no reload logged:\n%s", c.logTail(1))
	}
}

// With --listen 0 (Redis's "port 0") a node serves TLS only.
func TestTLSOnly(t *testing.T) {
	f := newTLSFiles(t)
	addrs := freeAddrs(t, 2)
	tlsAddr, peerAddr := addrs[0], addrs[1]
	cmd := exec.Command(seshatd, append([]string{"--id", "1", "--data-dir", t.TempDir(), "--listen", "0",
		"--cluster", "1=" + peerAddr, "--cluster-id", "e2e", "--bootstrap", "--tick", tick.String(),
		"--election-ticks", strconv.Itoa(electionTicks), "--heartbeat-ticks", "2"}, f.flags(tlsAddr, "optional")...)...)
	logf, err := os.Create(filepath.Join(f.dir, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	ctx := ctxT(t, 30*time.Second)
	r := f.tlsClient(t, tlsAddr, false) // optional: no certificate is fine
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.Set(ctx, "only", "tls", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("SET over TLS: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	basicCases(ctx, t, f.tlsClient(t, tlsAddr, true), "only:")
	if port, err := r.ConfigGet(ctx, "port").Result(); err != nil || port["port"] != "0" {
		t.Fatalf("CONFIG GET port = %v, %v; want 0", port, err)
	}
	// The start line names the TLS listener and no plain one.
	b, _ := os.ReadFile(logf.Name())
	if !strings.Contains(string(b), "tls_listen="+tlsAddr) || strings.Contains(string(b), " listen=") {
		t.Fatalf("start line:\n%s", b)
	}
}

// TLS files that cannot serve stop seshatd at start with status 2 and one
// line saying which.
func TestTLSBadFilesExitWithOneLine(t *testing.T) {
	f := newTLSFiles(t)
	addrs := freeAddrs(t, 2)
	garbage := filepath.Join(f.dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := f.ca.Issue(t, "other")
	other.Write(t, f.dir, "other")
	base := []string{"--id", "1", "--data-dir", t.TempDir(), "--listen", addrs[0], "--cluster", "1=" + addrs[1]}
	tlsArgs := func(cert, key, ca string) []string {
		return append(base, "--tls-port", "0.0.0.0:1", "--tls-cert", cert, "--tls-key", key, "--tls-ca", ca)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing certificate", tlsArgs(filepath.Join(f.dir, "none.crt"), f.server.KeyFile, f.caFile), "--tls-cert"},
		{"key of another certificate", tlsArgs(f.server.CertFile, other.KeyFile, f.caFile), "private key does not match"},
		{"CA without certificates", tlsArgs(f.server.CertFile, f.server.KeyFile, garbage), "--tls-ca"},
		{"peer CA without certificates", append(base, "--peer-tls-cert", f.server.CertFile, "--peer-tls-key", f.server.KeyFile, "--peer-tls-ca", garbage), "--peer-tls-ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(seshatd, tc.args...)
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; output:\n%s", err, out)
			}
			if lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n"); len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("output %q: want one line containing %q", out, tc.want)
			}
		})
	}
}

// SIGHUP reloads certificates; without any it is logged and ignored, never
// the end of the node (its default action).
func TestSIGHUPWithoutTLSKeepsRunning(t *testing.T) {
	c := newCluster(t, 1)
	c.leader(10 * time.Second)
	p := c.signal(1, syscall.SIGHUP)
	ctx := ctxT(t, 10*time.Second)
	if err := c.client(1).Set(ctx, "after", "hup", 0).Err(); err != nil {
		t.Fatalf("SET after SIGHUP: %v", err)
	}
	select {
	case <-p.done:
		t.Fatalf("the node exited on SIGHUP: %v", p.err)
	case <-time.After(100 * time.Millisecond):
	}
}
