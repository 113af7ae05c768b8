package node_test

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

// startSingle starts a one-node cluster over memory stores with a 1 ms
// tick, lets tune adjust the config, and waits until it leads.
func startSingle(t *testing.T, tune func(*node.Config)) (*node.Node, *memory.LogStore, *memory.KV) {
	t.Helper()
	net := memory.NewNetwork(memory.NetworkOptions{Seed: 1})
	t.Cleanup(net.Close)
	log, kv := memory.NewLogStore(), memory.NewKV()
	cfg := node.Config{
		DriverConfig: node.DriverConfig{Raft: consensus.Config{ID: 1, Peers: []domain.NodeID{1}, Rand: rand.New(rand.NewPCG(1, 1))}},
		Log:          log,
		Vote:         memory.NewVoteStore(),
		StateMachine: kv,
		Transport:    net.Endpoint(1),
		TickInterval: time.Millisecond,
	}
	if tune != nil {
		tune(&cfg)
	}
	n, err := node.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	deadline := time.Now().Add(5 * time.Second)
	for n.Status().Role != consensus.Leader {
		if time.Now().After(deadline) {
			t.Fatal("single node did not become leader within 5s")
		}
		time.Sleep(time.Millisecond)
	}
	return n, log, kv
}

// waitingKV makes every Apply wait for release once wait is set: a store
// whose commit waits (on a flush after a large write, on a busy disk).
type waitingKV struct {
	*memory.KV
	wait    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (w *waitingKV) Apply(ents []domain.Entry) ([]domain.Result, error) {
	if w.wait.Load() {
		select {
		case w.entered <- struct{}{}:
		default:
		}
		<-w.release
	}
	return w.KV.Apply(ents)
}

// The loop never applies a job itself, however small: while an apply
// waits in the store it goes on taking proposals and writing the log (and
// ticking, and answering peers). It used to run a small job itself when
// the apply stage was idle; a commit waited there for 0.7 to 4.8 s after a
// large SET, and the followers of a loop stuck in it elected another
// leader.
func TestLoopGoesOnWhileApplyWaits(t *testing.T) {
	w := &waitingKV{entered: make(chan struct{}, 1), release: make(chan struct{})}
	n, log, _ := startSingle(t, func(c *node.Config) {
		w.KV = c.StateMachine.(*memory.KV)
		c.StateMachine = w
	})
	w.wait.Store(true)
	ctx := context.Background()
	results := make(chan error, 2)
	go func() {
		_, err := n.Propose(ctx, set("a", "1"))
		results <- err
	}()
	select {
	case <-w.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first write never reached the state machine")
	}
	last, err := log.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := n.Propose(ctx, set("b", "2"))
		results <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if now, err := log.LastIndex(); err != nil || now > last {
			break
		}
		if time.Now().After(deadline) {
			close(w.release)
			t.Fatal("the second write was not appended while the first one's apply waited: the loop waited with it")
		}
	}
	close(w.release)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
}
