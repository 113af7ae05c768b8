package node_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

// chanTransport is a transport whose received messages the test pushes
// in, and whose sent ones it ignores: the test plays the other node.
type chanTransport struct{ in chan domain.Message }

func (c *chanTransport) Send(m domain.Message) error {
	if m.Snapshot != nil && m.Snapshot.File != "" {
		_ = os.Remove(m.Snapshot.File) // Send takes the file
	}
	return nil
}
func (c *chanTransport) Receive() <-chan domain.Message { return c.in }
func (c *chanTransport) Close() error                   { return nil }

// imageFile writes, to a file of dir, the snapshot of a state machine
// that applied a membership of {1, 2} and then n keys, all at term 1.
func imageFile(t *testing.T, dir string, n int) *domain.Snapshot {
	t.Helper()
	kv := memory.NewKV()
	ents := []domain.Entry{{Type: domain.EntryMembership, Term: 1, Index: 1,
		Data: domain.EncodeMembership(domain.Membership{Voters: []domain.NodeID{1, 2}})}}
	for i := range n {
		ents = append(ents, domain.Entry{Type: domain.EntryNormal, Term: 1, Index: domain.Index(i + 2), Data: set(fmt.Sprint("k", i), "v")})
	}
	if _, err := kv.Apply(ents); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, "image-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	meta, err := kv.Snapshot(bw)
	if err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return &domain.Snapshot{Meta: meta, File: f.Name()}
}

func waitGone(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot file %s still there after 5s", path)
		}
	}
}

// TestSnapshotInstalledFromFile: a follower installs a leader's snapshot
// held in a file (as the tcp transport delivers one with a spool) and
// deletes the file; a stale one, which Raft refuses, has its file deleted
// too.
func TestSnapshotInstalledFromFile(t *testing.T) {
	dir := t.TempDir()
	tr := &chanTransport{in: make(chan domain.Message, 4)}
	kv := memory.NewKV()
	n, err := node.Start(node.Config{
		DriverConfig: node.DriverConfig{Raft: consensus.Config{ID: 1, Peers: []domain.NodeID{1, 2},
			ElectionTicks: 1000, Rand: rand.New(rand.NewPCG(1, 1))}},
		Log: memory.NewLogStore(), Vote: memory.NewVoteStore(), StateMachine: kv, Transport: tr,
		TickInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()

	snap := imageFile(t, dir, 50)
	tr.in <- domain.Message{Type: domain.MsgSnap, From: 2, To: 1, Term: 1, Snapshot: snap}
	waitGone(t, snap.File)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if meta, _ := kv.Applied(); meta.Index == snap.Meta.Index {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("applied index never reached the snapshot's %d", snap.Meta.Index)
		}
	}
	if v, err := kv.Get([]byte("k49")); err != nil || string(v) != "v" {
		t.Fatalf("k49 after the install: %q, %v", v, err)
	}

	// An older snapshot is refused (its index is committed here): its file
	// goes all the same.
	stale := imageFile(t, dir, 10)
	tr.in <- domain.Message{Type: domain.MsgSnap, From: 2, To: 1, Term: 1, Snapshot: stale}
	waitGone(t, stale.File)
	if meta, _ := kv.Applied(); meta.Index != snap.Meta.Index {
		t.Fatalf("applied index %d after a stale snapshot, want %d", meta.Index, snap.Meta.Index)
	}
}

// TestSnapshotSentFromFile: a leader with a SnapshotDir writes the image
// it sends to a follower behind its log to a file there, which the
// transport takes (the memory network reads and removes it): the
// follower catches up, and the directory is empty again. Stale image
// files of an earlier run are deleted at start, others left alone.
func TestSnapshotSentFromFile(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"seshat-snapshot-old.out", "seshat-snapshot-received.in"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	net := memory.NewNetwork(memory.NetworkOptions{Seed: 1})
	defer net.Close()
	peers := []domain.NodeID{1, 2, 3}
	kvs := map[domain.NodeID]*memory.KV{}
	var nodes []*node.Node
	for _, id := range peers {
		kvs[id] = memory.NewKV()
		nd, err := node.Start(node.Config{
			DriverConfig: node.DriverConfig{
				Raft:            consensus.Config{ID: id, Peers: peers, Rand: rand.New(rand.NewPCG(1, uint64(id)))},
				SnapshotEntries: 20, TrailingEntries: 5,
			},
			Log: memory.NewLogStore(), Vote: memory.NewVoteStore(), StateMachine: kvs[id], Transport: net.Endpoint(id),
			TickInterval: 5 * time.Millisecond, SnapshotDir: dir,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer nd.Stop()
		nodes = append(nodes, nd)
	}
	if _, err := os.Stat(filepath.Join(dir, "seshat-snapshot-old.out")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale outgoing image still there after Start: %v", err)
	}
	// Node 3 is cut off while the others write and compact.
	net.Disconnect(3)
	var lead *node.Node
	for deadline := time.Now().Add(10 * time.Second); lead == nil; time.Sleep(time.Millisecond) {
		for _, nd := range nodes[:2] {
			if nd.Status().Role == consensus.Leader {
				lead = nd
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 100 {
		if _, err := lead.Propose(ctx, set(fmt.Sprint("k", i), "v")); err != nil {
			t.Fatalf("propose %d: %v", i, err)
		}
	}
	net.Reconnect(3)
	want, _ := kvs[lead.ID()].Applied()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if meta, _ := kvs[3].Applied(); meta.Index >= want.Index {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 3 never caught up to %d", want.Index)
		}
	}
	if v, err := kvs[3].Get([]byte("k0")); err != nil || string(v) != "v" {
		t.Fatalf("k0 on node 3: %q, %v (a snapshot carried it: the log was compacted)", v, err)
	}
	// Every image sent was taken and removed; the received one of another
	// owner stays.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 1 && ents[0].Name() == "seshat-snapshot-received.in" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot dir holds %v", ents)
		}
	}
}
