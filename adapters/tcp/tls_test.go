package tcp

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/test/certs"
)

// peerTLS is a node's mutual TLS configuration under ca.
func peerTLS(t *testing.T, ca *certs.Authority, name string) *tls.Config {
	pair := ca.Issue(t, name)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair.TLS(t)},
		RootCAs:      ca.Pool(), ClientCAs: ca.Pool(),
		ClientAuth: tls.RequireAndVerifyClientCert,
	}
}

// Nodes with certificates of one CA exchange messages over TLS, with and
// without a peer secret on top.
func TestPeerTLSMesh(t *testing.T) {
	ca := certs.NewAuthority(t, "peer CA")
	for name, secret := range map[string]string{"TLS": "", "TLSAndSecret": testSecret} {
		t.Run(name, func(t *testing.T) {
			trs, logs := mesh(t, 3, func(o *Options) {
				o.TLS = peerTLS(t, ca, "node")
				o.PeerSecret = []byte(secret)
			})
			for i, a := range trs {
				for j := range trs {
					if i != j {
						_ = a.Send(domain.Message{Type: domain.MsgApp, From: domain.NodeID(i + 1), To: domain.NodeID(j + 1), Term: 4,
							Entries: []domain.Entry{{Index: 1, Term: 4, Data: []byte("over tls")}}})
					}
				}
			}
			for i, tr := range trs {
				for _, m := range receive(t, tr, 2, 5*time.Second) {
					if string(m.Entries[0].Data) != "over tls" {
						t.Fatalf("got %v", m)
					}
				}
				// (A dial may come before mesh has told its target about
				// the dialer: refused as an unknown peer, and retried.)
				if strings.Contains(logs[i].String(), `"auth":true`) {
					t.Fatalf("node %d refused a peer's authentication: %+v\n%s", i+1, tr.Stats(), logs[i])
				}
			}
		})
	}
}

// A node with peer TLS delivers nothing from a dialer without TLS, with a
// certificate of another CA, or with no certificate, and logs each
// refusal.
func TestPeerTLSRefusesStrangers(t *testing.T) {
	ca := certs.NewAuthority(t, "peer CA")
	ov, logs := testOptions(1)
	ov.TLS = peerTLS(t, ca, "victim")
	ov.Peers = map[domain.NodeID]string{2: "127.0.0.1:1"}
	victim := newTransport(t, ov)
	noCert := peerTLS(t, ca, "x")
	noCert.Certificates = nil
	for name, cfg := range map[string]*tls.Config{
		"plain":     nil,
		"other CA":  peerTLS(t, certs.NewAuthority(t, "other CA"), "stranger"),
		"no client": noCert,
	} {
		oa, _ := testOptions(2)
		oa.TLS = cfg
		if cfg != nil {
			cfg.RootCAs = ca.Pool() // the stranger trusts the victim
		}
		oa.Peers = map[domain.NodeID]string{1: victim.Addr().String()}
		attacker := newTransport(t, oa)
		before := victim.Stats().RejectedConns
		eventually(t, 5*time.Second, name+": refusals", func() bool {
			_ = attacker.Send(domain.Message{Type: domain.MsgVote, From: 2, To: 1, Term: 1000})
			return victim.Stats().RejectedConns >= before+2
		})
		if st := attacker.Stats(); st.Connects != 0 {
			t.Fatalf("%s: the attacker connected: %+v", name, st)
		}
		_ = attacker.Close()
	}
	expectNothing(t, victim, 50*time.Millisecond)
	if st := victim.Stats(); st.Received != 0 {
		t.Fatalf("victim stats %+v", st)
	}
	if l := logs.String(); !strings.Contains(l, "TLS handshake") || !strings.Contains(l, `"auth":true`) {
		t.Fatalf("refusals not logged:\n%s", l)
	}
}
