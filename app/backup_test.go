package app

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// TestBackup: the image follows one read barrier, holds what was written
// before, and restores into another state machine; with no leader there
// is no image; a closed service refuses.
func TestBackup(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{})
	ctx := context.Background()
	if r := s.Do(ctx, []ports.Request{req("SET", "k", "v")}, ports.DoOptions{}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	b := NewBackup(s, n.kv)
	reads := n.reads
	var img bytes.Buffer
	meta, err := b.Backup(ctx, &img)
	if err != nil {
		t.Fatal(err)
	}
	if n.reads != reads+1 || meta.Index != n.index {
		t.Fatalf("%d barriers, image at %d (applied %d)", n.reads-reads, meta.Index, n.index)
	}
	other := memory.NewKV()
	if err := other.Restore(meta, &img); err != nil {
		t.Fatal(err)
	}
	if v, err := other.Get([]byte("k")); err != nil || !bytes.Contains(v, []byte("v")) {
		t.Fatalf("restored k = %q, %v", v, err)
	}

	n.mu.Lock()
	n.leader = domain.None
	n.mu.Unlock()
	img.Reset()
	if _, err := b.Backup(ctx, &img); !errors.Is(err, domain.ErrNoLeader) || img.Len() != 0 {
		t.Fatalf("without a leader: %v, %d bytes written", err, img.Len())
	}
	s.Close()
	if _, err := b.Backup(ctx, &img); !errors.Is(err, domain.ErrStopped) {
		t.Fatalf("closed: %v", err)
	}
}
