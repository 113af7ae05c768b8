package tcp

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

// BenchmarkLoopback measures messages per second from one transport to
// another over 127.0.0.1, keeping at most `window` messages in flight so
// that nothing is dropped. Run: go test -run '^$' -bench Loopback ./adapters/tcp
func BenchmarkLoopback(b *testing.B) {
	for _, c := range []struct {
		name string
		m    domain.Message
	}{
		{"Heartbeat", domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2, Term: 5, Commit: 100}},
		{"MsgApp64x100", benchApp()},
	} {
		b.Run(c.name, func(b *testing.B) {
			const window = 1024
			trs, _ := mesh(b, 2, func(o *Options) { o.SendQueue = 2 * window; o.InboxSize = 2 * window })
			a, rx := trs[0], trs[1].Receive()
			size := len(EncodeMessage(nil, c.m)) + frameHeaderSize
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			sent, received := 0, 0
			for received < b.N {
				for sent < b.N && sent-received < window {
					if err := a.Send(c.m); err != nil {
						b.Fatal(err)
					}
					sent++
				}
				select {
				case <-rx:
					received++
				case <-time.After(5 * time.Second):
					b.Fatalf("stalled at %d of %d; stats %+v", received, b.N, a.Stats())
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			if st := a.Stats(); st.Dropped != 0 {
				b.Fatalf("dropped: %+v", st)
			}
		})
	}
}

// BenchmarkHandshake measures both sides of one handshake over an
// in-memory pipe, without and with the peer secret: the CPU a connection
// costs to authenticate. Run: go test -run '^$' -bench Handshake ./adapters/tcp
func BenchmarkHandshake(b *testing.B) {
	for name, secret := range map[string][]byte{"NoSecret": nil, "PeerSecret": []byte(testSecret)} {
		b.Run(name, func(b *testing.B) {
			acceptor := &handshaker{cluster: "bench", self: 1, secret: secret, known: func(id domain.NodeID) bool { return id == 2 }}
			dialer := &handshaker{cluster: "bench", self: 2, secret: secret}
			b.ReportAllocs()
			for b.Loop() {
				c1, c2 := net.Pipe()
				errc := make(chan error, 1)
				go func() {
					_, _, err := acceptor.accept(newFrameReader(c2, handshakeMaxBytes), bufio.NewWriter(c2))
					errc <- err
				}()
				if err := dialer.dial(newFrameReader(c1, handshakeMaxBytes), bufio.NewWriter(c1), 1, laneControl); err != nil {
					b.Fatal(err)
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
				_ = c1.Close()
				_ = c2.Close()
			}
		})
	}
}
