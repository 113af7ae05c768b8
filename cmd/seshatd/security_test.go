package main

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/test/certs"
)

func TestSecurityFlags(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("  a secret from a file, long enough\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--id", "1", "--data-dir", "/d", "--cluster", "1=a:1"}
	three := []string{"--id", "1", "--data-dir", "/d", "--cluster", "1=a:1,2=b:2,3=c:3", "--clients", "1=a:11,2=b:12,3=c:13"}

	cfg, err := parseFlags(append(base, "--peer-secret-file", secretFile), env(nil))
	if err != nil || string(cfg.sec.peerSecret) != "a secret from a file, long enough" {
		t.Fatalf("--peer-secret-file: %q, %v", cfg.sec.peerSecret, err)
	}
	cfg, err = parseFlags(base, env(map[string]string{"SESHAT_PEER_SECRET": "from the environment!"}))
	if err != nil || string(cfg.sec.peerSecret) != "from the environment!" {
		t.Fatalf("SESHAT_PEER_SECRET: %q, %v", cfg.sec.peerSecret, err)
	}
	cfg, err = parseFlags(append(base, "--listen", "0.0.0.0:7000", "--tls-port", "7001", "--tls-cert", "c", "--tls-key", "k", "--tls-auth-clients", "no"), env(nil))
	if err != nil || cfg.sec.tlsListen != "0.0.0.0:7001" || cfg.sec.clientTLS.auth != tls.NoClientCert {
		t.Fatalf("--tls-port on --listen's host: %+v, %v", cfg.sec, err)
	}
	cfg, err = parseFlags(append(base, "--listen", "0", "--tls-port", "127.0.0.2:9", "--tls-cert", "c", "--tls-key", "k", "--tls-ca", "ca"), env(nil))
	if err != nil || cfg.listen != "" || cfg.sec.tlsListen != "127.0.0.2:9" || cfg.sec.clientTLS.auth != tls.RequireAndVerifyClientCert {
		t.Fatalf("TLS only: listen %q, %+v, %v", cfg.listen, cfg.sec, err)
	}
	cfg, err = parseFlags(append(base, "--peer-tls-cert", "c", "--peer-tls-key", "k", "--peer-tls-ca", "ca"), env(nil))
	if err != nil || cfg.sec.peerTLS.cert != "c" || cfg.sec.peerTLS.auth != tls.RequireAndVerifyClientCert {
		t.Fatalf("--peer-tls-*: %+v, %v", cfg.sec.peerTLS, err)
	}
	cfg, err = parseFlags(append(base, "--tls-port", "7001", "--tls-cert", "c", "--tls-key", "k", "--tls-ca", "ca", "--tls-auth-clients", "optional"), env(nil))
	if err != nil || cfg.sec.clientTLS.auth != tls.VerifyClientCertIfGiven {
		t.Fatalf("optional: %+v, %v", cfg.sec, err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{append(base, "--peer-secret", "short"), "at least 16"},
		{append(base, "--peer-secret", "long enough secret here", "--peer-secret-file", secretFile), "choose one"},
		{append(base, "--peer-secret-file", empty), "is empty"},
		{append(base, "--peer-secret-file", filepath.Join(dir, "missing")), "--peer-secret-file"},
		{append(base, "--tls-port", "7001"), "needs --tls-cert and --tls-key"},
		{append(base, "--tls-port", "7001", "--tls-cert", "c", "--tls-key", "k"), "needs --tls-ca"},
		{append(base, "--tls-port", "x:y:z"), "--tls-port"},
		{append(base, "--tls-port", "70000"), "--tls-port"},
		{append(base, "--tls-cert", "c"), "need --tls-port"},
		{append(base, "--tls-auth-clients", "maybe"), "--tls-auth-clients"},
		{append(base, "--peer-tls-cert", "c", "--peer-tls-key", "k"), "--peer-tls-ca"},
		{append(base, "--listen", ""), "both off"},
		{append(three, "--listen", "0", "--tls-port", "7001", "--tls-cert", "c", "--tls-key", "k", "--tls-auth-clients", "no"), "--redirect"},
	} {
		_, err := parseFlags(c.args, env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.args, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "long enough secret") {
			t.Errorf("%q: the error shows the secret: %v", c.args, err)
		}
	}
}

// The reloader serves a rotated certificate once the files change, and
// keeps the previous one while the files do not make a valid pair.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	ca := certs.NewAuthority(t, "reload CA")
	first := ca.Issue(t, "first")
	first.Write(t, dir, "server")
	files := certFiles{cert: first.CertFile, key: first.KeyFile, ca: ca.WriteCA(t, dir, "ca.crt"),
		auth: tls.RequireAndVerifyClientCert, flag: "--tls"}
	r, err := newCertReloader(files)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		cfg, err := r.serverConfig().GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
			t.Fatalf("config %+v, %v", cfg, err)
		}
		leaf := cfg.Certificates[0].Leaf
		return leaf.SerialNumber.String()
	}
	if got := serial(); got != first.Serial.String() {
		t.Fatalf("serving serial %s, want %s", got, first.Serial)
	}
	log := zerolog.Nop()

	// A certificate without its key: refused, the first one stays.
	second := ca.Issue(t, "second")
	if err := os.WriteFile(first.CertFile, second.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	r.reload(log, "test")
	if got := serial(); got != first.Serial.String() {
		t.Fatalf("after a half rotation serving %s, want the first %s", got, first.Serial)
	}
	second.Write(t, dir, "server")
	if r.fileStamp() == r.stamp {
		t.Fatal("the rotation did not change the files' stamp")
	}
	r.reload(log, "test")
	if got := serial(); got != second.Serial.String() {
		t.Fatalf("after the rotation serving %s, want %s", got, second.Serial)
	}
	if _, err := newCertReloader(certFiles{cert: filepath.Join(dir, "none"), key: first.KeyFile, flag: "--tls"}); err == nil {
		t.Fatal("a missing certificate file loaded")
	}
}

// peerConfig, used by both ends, lets two nodes of one CA through and
// refuses a certificate of another CA or one that does not name the host
// dialed.
func TestPeerConfigIsMutual(t *testing.T) {
	dir := t.TempDir()
	ca, other := certs.NewAuthority(t, "peer CA"), certs.NewAuthority(t, "other CA")
	caFile := ca.WriteCA(t, dir, "ca.crt")
	holder := func(a *certs.Authority, name string) *certReloader {
		p := a.Issue(t, name)
		p.Write(t, dir, name)
		r, err := newCertReloader(certFiles{cert: p.CertFile, key: p.KeyFile, ca: caFile, auth: tls.RequireAndVerifyClientCert, flag: "--peer-tls"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b, stranger := holder(ca, "a"), holder(ca, "b"), holder(other, "stranger")
	handshake := func(server, client *certReloader, name string) (error, error) {
		c1, c2 := net.Pipe()
		defer c1.Close()
		defer c2.Close()
		cc := client.peerConfig()
		cc.ServerName = name
		srv, cli := tls.Server(c1, server.peerConfig()), tls.Client(c2, cc)
		errc := make(chan error, 1)
		go func() { errc <- srv.Handshake(); _ = c1.Close() }()
		cerr := cli.Handshake()
		if cerr == nil {
			// TLS 1.3: the server's verdict on the client's certificate
			// arrives after the client's handshake; read it.
			_ = cli.SetReadDeadline(time.Now().Add(time.Second))
			_, rerr := cli.Read(make([]byte, 1))
			if rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) && !errors.Is(rerr, io.EOF) {
				cerr = rerr
			}
		}
		_ = c2.Close()
		return <-errc, cerr
	}
	if serr, cerr := handshake(a, b, "127.0.0.1"); serr != nil || cerr != nil {
		t.Fatalf("two members: server %v, client %v", serr, cerr)
	}
	if serr, _ := handshake(a, stranger, "127.0.0.1"); serr == nil {
		t.Fatal("a member accepted a client certificate of another CA")
	}
	if _, cerr := handshake(stranger, a, "127.0.0.1"); cerr == nil {
		t.Fatal("a member trusted a server certificate of another CA")
	}
	if _, cerr := handshake(a, b, "db.example.com"); cerr == nil {
		t.Fatal("a member trusted a certificate that does not name the host dialed")
	}
}
