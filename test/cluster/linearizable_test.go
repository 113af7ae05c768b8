package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// kvInput is one operation on a register per key.
type kvInput struct {
	put   bool
	key   string
	value string
}

// kvModel is a map of registers, checked one key at a time.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(kvInput)
		if in.put {
			return true, in.value
		}
		return output.(string) == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(kvInput)
		if in.put {
			return fmt.Sprintf("put(%s, %s)", in.key, in.value)
		}
		return fmt.Sprintf("get(%s) -> %q", in.key, output)
	},
}

// history collects operations from many goroutines.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (h *history) now() int64 { return time.Since(h.start).Nanoseconds() }

func (h *history) add(client int, in kvInput, out string, call, ret int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// TestReadIndexLinearizable: writers and readers (on followers too, through
// ReadIndex) run while leadership moves, by transfer and by cutting the
// leader off; the history of puts and gets must be linearizable.
func TestReadIndexLinearizable(t *testing.T) {
	if cutOff := checkReadsLinearizable(t, Options{}, false); cutOff > 0 {
		t.Fatalf("%d reads served by a leader cut off from its followers, with no lease", cutOff)
	}
}

// checkReadsLinearizable runs the test above on a cluster shaped by opts
// (N and Transport are set here). With leaderReads, half the readers read
// on the node the nemesis last found leading (the one it cuts off). It
// returns the number of reads that a node answered while it was cut off
// from the others (from the call to the return): only a lease can answer
// those.
func checkReadsLinearizable(t *testing.T, opts Options, leaderReads bool) (cutOff int64) {
	const n, writers, readers = 3, 4, 6
	// Node 3 gets its appends and heartbeats late, overtaken by the answers
	// to its reads: a follower that served a read before applying through
	// the read index would return stale data.
	opts.N = n
	opts.Transport = func(i int, tr ports.Transport) ports.Transport {
		if i == 2 {
			return newLaggingTransport(tr, 4*tickInterval)
		}
		return tr
	}
	c := New(t, opts)
	c.net.SetDelay(0, 2*tickInterval)
	c.Leader(t)
	keys := []string{"x", "y", "z"}
	h := &history{start: time.Now()}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var puts, gets, unknown, cutOffReads atomic.Int64
	var lastLeader atomic.Int64
	for w := range writers {
		rng := rand.New(rand.NewPCG(c.Seed(), uint64(100+w)))
		wg.Go(func() {
			target := w % n
			for seq := 0; !stop.Load(); seq++ {
				in := kvInput{put: true, key: keys[rng.IntN(len(keys))], value: fmt.Sprintf("w%d-%d", w, seq)}
				cmd := domain.EncodeCommand(domain.Command{Ops: []domain.Op{{Kind: domain.OpSet, Key: []byte(in.key), Value: []byte(in.value)}}})
				nd := c.Node(target)
				ctx, cancel := context.WithTimeout(context.Background(), 4*electionTimeout)
				call := h.now()
				_, err := nd.Propose(ctx, cmd)
				ret := h.now()
				cancel()
				switch {
				case err == nil:
					puts.Add(1)
					h.add(w, in, "", call, ret)
				case retryable(err):
					// Not appended: no effect, not part of the history.
					if l := nd.Leader(); l != domain.None {
						target = int(l) - 1
					} else {
						target = rng.IntN(n)
					}
					time.Sleep(tickInterval)
				default:
					// Outcome unknown: it may take effect at any time later.
					// Once the cluster has settled, those that never applied
					// are dropped (see below).
					unknown.Add(1)
					h.add(w, in, cmdKey(cmd), call, math.MaxInt64)
					target = rng.IntN(n)
				}
			}
		})
	}
	for r := range readers {
		rng := rand.New(rand.NewPCG(c.Seed(), uint64(200+r)))
		wg.Go(func() {
			for !stop.Load() {
				i := rng.IntN(n)
				if leaderReads && r%2 == 0 {
					i = int(lastLeader.Load())
				}
				key := keys[rng.IntN(len(keys))]
				nd := c.Node(i)
				ctx, cancel := context.WithTimeout(context.Background(), 4*electionTimeout)
				wasCut := !c.Connected(i)
				call := h.now()
				err := nd.ReadIndex(ctx)
				cancel()
				if err == nil && wasCut && !c.Connected(i) {
					cutOffReads.Add(1)
				}
				if err != nil {
					time.Sleep(tickInterval)
					continue
				}
				if leaderReads {
					// Lease reads take microseconds: keep the history
					// small enough to check.
					time.Sleep(time.Millisecond)
				}
				v, err := c.KV(i).Get([]byte(key))
				ret := h.now()
				if err != nil && !errors.Is(err, domain.ErrNotFound) {
					t.Errorf("node %d: get %s: %v", c.id(i), key, err)
					return
				}
				gets.Add(1)
				h.add(writers+r, kvInput{key: key}, string(v), call, ret)
			}
		})
	}
	// The nemesis: move leadership around.
	for round := range 10 {
		time.Sleep(electionTimeout)
		l := c.Leader(t)
		lastLeader.Store(int64(l))
		if round%2 == 0 {
			to := (l + 1 + c.Rand().IntN(n-1)) % n
			ctx, cancel := context.WithTimeout(context.Background(), 4*electionTimeout)
			c.Node(l).TransferLeadership(ctx, c.id(to))
			cancel()
		} else {
			if leaderReads {
				// Let the leader's readers reach it first.
				time.Sleep(4 * tickInterval)
			}
			c.Disconnect(l)
			time.Sleep(2 * electionTimeout)
			c.Reconnect(l)
		}
	}
	time.Sleep(electionTimeout)
	stop.Store(true)
	wg.Wait()
	// Settle: a write of the current leader commits everything that will
	// ever commit; unknown writes not applied by then never take effect.
	c.One(t, n, true)
	c.CheckApplied(t)
	ops := h.ops[:0]
	dropped := 0
	for _, op := range h.ops {
		if op.Return == math.MaxInt64 {
			if !c.Applied([]byte(op.Output.(string))) {
				dropped++
				continue
			}
			op.Output = ""
		}
		ops = append(ops, op)
	}
	h.ops = ops
	t.Logf("history: %d puts, %d gets (%d by a node cut off), %d unknown outcomes (%d never applied)",
		puts.Load(), gets.Load(), cutOffReads.Load(), unknown.Load(), dropped)
	if puts.Load() < 10 || gets.Load() < 10 {
		t.Fatalf("too little happened to check: %d puts, %d gets", puts.Load(), gets.Load())
	}
	res, info := porcupine.CheckOperationsVerbose(kvModel, h.ops, 15*time.Second)
	switch res {
	case porcupine.Illegal:
		if f, err := os.CreateTemp("", "seshat-linearizability-*.html"); err == nil {
			if porcupine.Visualize(kvModel, info, f) == nil {
				t.Logf("visualization: %s", f.Name())
			}
			f.Close()
		}
		t.Fatal("history is not linearizable")
	case porcupine.Unknown:
		t.Log("linearizability check timed out: inconclusive")
	}
	return cutOffReads.Load()
}

// laggingTransport delivers MsgApp and MsgHeartbeat a fixed time late (in
// order among themselves) and every other message at once, so that the
// answer to a read can overtake the entries it depends on. The Transport
// contract allows any reordering.
type laggingTransport struct {
	ports.Transport
	out chan domain.Message
}

func newLaggingTransport(inner ports.Transport, lag time.Duration) *laggingTransport {
	type timed struct {
		m  domain.Message
		at time.Time
	}
	lt := &laggingTransport{Transport: inner, out: make(chan domain.Message, 4096)}
	queue := make(chan timed, 4096)
	deliver := func(m domain.Message) {
		select {
		case lt.out <- m:
		default: // a full inbox drops, as the network's does
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(queue)
		for m := range inner.Receive() {
			if m.Type == domain.MsgApp || m.Type == domain.MsgHeartbeat {
				select {
				case queue <- timed{m, time.Now().Add(lag)}:
				default:
				}
				continue
			}
			deliver(m)
		}
	})
	wg.Go(func() {
		for tm := range queue {
			time.Sleep(time.Until(tm.at))
			deliver(tm.m)
		}
	})
	go func() { wg.Wait(); close(lt.out) }()
	return lt
}

func (lt *laggingTransport) Receive() <-chan domain.Message { return lt.out }

// cmdKey carries an encoded command in an operation's Output until the
// history is settled.
func cmdKey(cmd []byte) string { return string(cmd) }
