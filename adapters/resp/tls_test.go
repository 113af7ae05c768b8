package resp

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/test/certs"
)

// One server serves plain RESP and RESP over TLS side by side; with client
// certificates required, a client without one gets no reply.
func TestServeTLSBesidePlain(t *testing.T) {
	ca := certs.NewAuthority(t, "resp test CA")
	server, client := ca.Issue(t, "server"), ca.Issue(t, "client")
	s, err := New(newFakeKV(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	secure, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(plain)
	s.ServeTLS(secure, &tls.Config{Certificates: []tls.Certificate{server.TLS(t)},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	if s.Addr().String() != plain.Addr().String() || s.TLSAddr().String() != secure.Addr().String() {
		t.Fatalf("Addr %v, TLSAddr %v", s.Addr(), s.TLSAddr())
	}
	if got := exchange(t, plain.Addr().String(), "PING\r\n", 1); got[0] != "+PONG\r\n" {
		t.Fatalf("plain PING: %q", got)
	}

	ping := func(cfg *tls.Config) (string, error) {
		c, err := tls.Dial("tcp", secure.Addr().String(), cfg)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n"); err != nil {
			return "", err
		}
		r := bufio.NewReader(c)
		a, err := r.ReadString('\n')
		if err != nil {
			return a, err
		}
		b, err := r.ReadString('\n')
		return a + b, err
	}
	got, err := ping(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{client.TLS(t)}})
	if err != nil || got != "+OK\r\n+PONG\r\n" {
		t.Fatalf("TLS with a client certificate: %q, %v", got, err)
	}
	if got, err := ping(&tls.Config{RootCAs: ca.Pool()}); err == nil {
		t.Fatalf("TLS without a client certificate answered %q", got)
	}
	// A plain-text client on the TLS port gets no RESP reply either.
	c, err := net.Dial("tcp", secure.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "PING\r\n")
	if b, _ := io.ReadAll(c); len(b) > 0 && string(b) == "+PONG\r\n" {
		t.Fatalf("plain text served on the TLS port")
	}
}
