package tcp_test

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/adapters/tcp"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/test/certs"
	"github.com/seshat-kv/seshat/test/contract"
)

// The ports.Transport contract, without peer authentication and with each
// kind.
func TestTransportContract(t *testing.T) {
	ca := certs.NewAuthority(t, "contract CA")
	pair := ca.Issue(t, "node")
	peerTLS := &tls.Config{Certificates: []tls.Certificate{pair.TLS(t)}, RootCAs: ca.Pool(), ClientCAs: ca.Pool(),
		ClientAuth: tls.RequireAndVerifyClientCert}
	for name, auth := range map[string]struct {
		secret string
		tls    *tls.Config
		spool  bool // received snapshot images go to files
	}{"NoAuth": {}, "PeerSecret": {secret: "contract-suite secret"}, "PeerTLS": {tls: peerTLS}, "Spool": {spool: true}} {
		t.Run(name, func(t *testing.T) {
			contract.TestTransport(t, func(t *testing.T) contract.TransportHarness {
				opts := func(id domain.NodeID) tcp.Options {
					o := tcp.Options{ID: id, ClusterID: "contract", PeerSecret: []byte(auth.secret), TLS: auth.tls,
						BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
					if auth.spool {
						o.SpoolDir = t.TempDir()
					}
					return o
				}
				a, err := tcp.New(opts(1))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = a.Close() })
				ob := opts(2)
				ob.Peers = map[domain.NodeID]string{1: a.Addr().String()}
				b, err := tcp.New(ob)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close() })
				if err := a.SetPeer(2, b.Addr().String()); err != nil {
					t.Fatal(err)
				}
				// The harness is two connected endpoints: messages sent
				// before a first connection could be dropped (a failed
				// first dial drops what was queued meanwhile).
				for deadline := time.Now().Add(10 * time.Second); a.Stats().Connects == 0 || b.Stats().Connects == 0; {
					if time.Now().After(deadline) {
						t.Fatalf("not connected after 10s: %+v, %+v", a.Stats(), b.Stats())
					}
					time.Sleep(time.Millisecond)
				}
				return contract.TransportHarness{A: a, B: b, AID: 1, BID: 2}
			})
		})
	}
}
