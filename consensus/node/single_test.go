package node_test

import (
	"math/rand/v2"
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
