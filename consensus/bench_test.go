package consensus

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkPropose3 drives three in-memory cores (no I/O): each iteration
// proposes one batch on the leader and runs the network until the batch
// is committed and applied everywhere. It reports proposals per second.
//
//	go test ./consensus -run '^$' -bench Propose3 -benchtime 2s
func BenchmarkPropose3(b *testing.B) {
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			nw := newNetwork(b, 3, nil)
			nw.discardApplied = true
			l := nw.elect(1)
			data := make([][]byte, batch)
			for i := range data {
				data[i] = bytes.Repeat([]byte{'v'}, 64)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := l.Propose(data...); err != nil {
					b.Fatal(err)
				}
				nw.stabilize()
				if i%64 == 63 {
					// Keep memory flat: compact every node to what it applied.
					for _, id := range nw.ids {
						r := nw.node(id)
						if err := r.Compact(r.log.applied); err != nil {
							b.Fatal(err)
						}
						s := nw.stores[id]
						s.entries = s.entries[:0]
						s.snap.Index = r.log.applied
					}
				}
			}
			b.StopTimer()
			if l.role != Leader || l.log.committed != l.log.lastIndex() {
				b.Fatalf("leader %v commit %d last %d", l.role, l.log.committed, l.log.lastIndex())
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "proposals/s")
		})
	}
}
