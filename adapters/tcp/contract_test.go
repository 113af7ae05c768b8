package tcp_test

import (
	"testing"
	"time"

	"github.com/seshat-kv/seshat/adapters/tcp"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/test/contract"
)

// The ports.Transport contract, without peer authentication and with it.
func TestTransportContract(t *testing.T) {
	for name, secret := range map[string]string{"NoSecret": "", "PeerSecret": "contract-suite secret"} {
		t.Run(name, func(t *testing.T) {
			contract.TestTransport(t, func(t *testing.T) contract.TransportHarness {
				opts := func(id domain.NodeID) tcp.Options {
					return tcp.Options{ID: id, ClusterID: "contract", PeerSecret: []byte(secret),
						BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
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
				return contract.TransportHarness{A: a, B: b, AID: 1, BID: 2}
			})
		})
	}
}
