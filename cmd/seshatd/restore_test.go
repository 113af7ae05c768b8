package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/adapters/backupfile"
	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/adapters/pebble"
	"github.com/seshat-kv/seshat/domain"
)

// backupOf writes n keys into a fresh Pebble state machine at term 4 with
// three voters and returns a backup file of it.
func backupOf(t *testing.T, n int) []byte {
	t.Helper()
	db, err := pebble.Open(pebble.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sm := db.StateMachine()
	ents := []domain.Entry{{Index: 1, Term: 4, Type: domain.EntryMembership,
		Data: domain.EncodeMembership(domain.Membership{Voters: []domain.NodeID{1, 2, 3}})}}
	for i := range n {
		cmd := domain.Command{Ops: []domain.Op{{Kind: domain.OpSet, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}}}
		ents = append(ents, domain.Entry{Index: domain.Index(i + 2), Term: 4, Data: domain.EncodeCommand(cmd)})
	}
	if _, err := sm.Apply(ents); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := backupfile.NewWriter(&buf, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sm.Snapshot(w)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(meta, 2); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRestoreDir: the restored dir holds the image's data, a membership
// of the new node alone one index past the image, and the image's term.
func TestRestoreDir(t *testing.T) {
	file := backupOf(t, 100)
	info, body, err := backupfile.Open(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "new")
	if err := restoreDir(dir, 7, info, body, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(pebble.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.StateMachine().Applied()
	if err != nil {
		t.Fatal(err)
	}
	want := domain.SnapshotMeta{Index: 102, Term: 4, Membership: domain.Membership{Voters: []domain.NodeID{7}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("applied point (-want +got):\n%s", d)
	}
	if v, err := db.VoteStore().Vote(); err != nil || v != (domain.Vote{Term: 4}) {
		t.Fatalf("vote %+v, %v", v, err)
	}
	ident, err := datadir.Load(dir)
	if err != nil || ident.NodeID != 7 || datadir.CheckUUID(ident.ClusterID) != nil {
		t.Fatalf("identity %+v, %v", ident, err)
	}
	for i := range 100 {
		if _, err := db.StateMachine().Get(fmt.Appendf(nil, "k%d", i)); err != nil {
			t.Fatalf("k%d: %v", i, err)
		}
	}
}

// TestRestoreFailureLeavesNothing: an image that passes the file's checks
// but does not restore (here, cut short inside a well-formed file) leaves
// neither the data dir nor a temporary one.
func TestRestoreFailureLeavesNothing(t *testing.T) {
	good := backupOf(t, 10)
	info, body, err := backupfile.Open(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	img := make([]byte, info.BodyLen)
	if _, err := body.Read(img); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := backupfile.NewWriter(&buf, time.Now())
	_, _ = w.Write(img[:len(img)-20])
	_ = w.Close(info.Meta, 2)
	info, body, err = backupfile.Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	err = restoreDir(filepath.Join(parent, "new"), 1, info, body, zerolog.Nop())
	if err == nil {
		t.Fatal("a cut image restored")
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Fatalf("a failed restore left %v", ents)
	}
}
