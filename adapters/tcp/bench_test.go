package tcp

import (
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
