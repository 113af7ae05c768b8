package node_test

import (
	"context"
	"errors"
	"fmt"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// BenchmarkPropose3Nodes measures proposals per second through a 3-node
// in-memory cluster (memory stores, whose Sync costs nothing, memory
// network, default ticks), with b.RunParallel's parallelism*GOMAXPROCS
// concurrent proposers on the leader: group commit is what makes
// concurrency pay. Each proposal is one small set and returns once the
// leader applied it; keys cycle over 4096. A proposal that meets a leader change (a starved
// machine can cause one) is retried on the new leader; "retries" reports
// how many were.
//
//	go test ./consensus/node -run '^$' -bench Propose3Nodes -benchtime 3s
//
// The fsync=1ms cases make every LogStore.Sync sleep 1ms, as a disk's
// fsync would: there one proposer waits about two syncs per proposal and
// many proposers share them. The pipeline=16 cases send 16 commands per
// Propose call (as a RESP client's pipeline of 16 does through the app),
// and count each command as one op.
//
// "cpu-ns/op" is the CPU time of the whole process (the three nodes and
// the proposers, user and system, from getrusage) over the timed loop,
// divided by the ops: the cost per proposal, whatever else runs on the
// machine. "msgs/op" is the Raft messages the three nodes sent per op.
// "wakeups/op" estimates the goroutines made runnable per op (see
// wakeups): the hand-offs between proposers, loops, stages and network.
func BenchmarkPropose3Nodes(b *testing.B) {
	cases := []struct {
		par, pipeline int
		fsync         time.Duration
	}{{1, 1, 0}, {16, 1, 0}, {128, 1, 0}, {1, 1, time.Millisecond}, {128, 1, time.Millisecond},
		{16, 16, 0}, {16, 16, time.Millisecond}}
	for _, bc := range cases {
		name := fmt.Sprintf("fsync=%v/proposers=%dxGOMAXPROCS", bc.fsync, bc.par)
		if bc.pipeline > 1 {
			name += fmt.Sprintf("/pipeline=%d", bc.pipeline)
		}
		b.Run(name, func(b *testing.B) {
			par := bc.par
			c := startCluster(b, 3, 0) // the default TickInterval
			for _, tn := range c.nodes {
				tn.log.syncDelay.Store(int64(bc.fsync))
			}
			var leader atomic.Pointer[testNode]
			leader.Store(c.leader(b))
			var seq, retries atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(par)
			cpu0, sent0, wk0 := cpuTime(b), c.net.Stats().Sent, wakeups()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				cmds := make([][]byte, 0, bc.pipeline)
				for pb.Next() {
					// A bounded key space keeps the state machines (and the
					// GC's work) the same size however long the run.
					cmds = append(cmds, set(fmt.Sprintf("k%d", seq.Add(1)%4096), "value-0123456789"))
					if len(cmds) < bc.pipeline {
						continue
					}
					for try := 0; ; try++ {
						l := leader.Load()
						_, err := l.Propose(ctx, cmds...)
						if err == nil {
							// The entries alias the slice: a new one for
							// the next call.
							cmds = make([][]byte, 0, bc.pipeline)
							break
						}
						if try == 100 || !(errors.Is(err, domain.ErrNotLeader) || errors.Is(err, domain.ErrLeadershipLost) || errors.Is(err, domain.ErrProposalDropped)) {
							b.Error(err)
							return
						}
						retries.Add(1)
						time.Sleep(time.Millisecond)
						for _, tn := range c.nodes {
							if tn.Status().Role == consensus.Leader {
								leader.CompareAndSwap(l, tn)
							}
						}
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proposals/s")
			b.ReportMetric(float64(retries.Load()), "retries")
			b.ReportMetric(float64(c.net.Stats().Sent-sent0)/float64(b.N), "msgs/op")
			b.ReportMetric(float64(wakeups()-wk0)/float64(b.N), "wakeups/op")
		})
	}
}

// wakeups estimates how many times goroutines were made runnable so far
// (a goroutine hand-off wakes one): the runtime samples one scheduling
// of a goroutine in 8 (runtime.gTrackingPeriod) into
// /sched/latencies:seconds, so eight times its count.
func wakeups() int64 {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	var n uint64
	for _, c := range s[0].Value.Float64Histogram().Counts {
		n += c
	}
	return 8 * int64(n)
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
