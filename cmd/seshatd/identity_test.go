package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

const uuidA = "0f8fad5b-d9cb-469f-a165-70867728950e"

func TestIdentityFlags(t *testing.T) {
	three := []string{"--id", "1", "--data-dir", "/d", "--cluster", "1=a:1,2=b:2,3=c:3", "--clients", "1=a:11,2=b:12,3=c:13"}
	one := []string{"--id", "1", "--data-dir", "/d", "--cluster", "1=a:1"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(three, "--bootstrap"), "needs --cluster-uuid"},
		{append(three, "--bootstrap", "--cluster-uuid", "nope"), "--cluster-uuid"},
		{append(one, "--bootstrap", "--join", "a:1"), "exclude each other"},
		{append(one, "--force-new-cluster"), "--i-understand-this-may-lose-writes"},
		{append(one, "--force-new-cluster"), "acknowledged but this node never received are gone"},
		{append(one, "--force-new-cluster", "--bootstrap", "--i-understand-this-may-lose-writes"), "excludes --bootstrap"},
		{append(one, "--i-understand-this-may-lose-writes"), "which is not given"},
		{[]string{"--id", "4", "--data-dir", "/d", "--join", "a:1"}, "--join needs --peer-listen"},
	} {
		if _, err := parseFlags(c.args, env(nil)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.args, err, c.want)
		}
	}
	cfg, err := parseFlags(append(three, "--cluster-uuid", strings.ToUpper(uuidA)), env(map[string]string{"SESHAT_BOOTSTRAP": "true"}))
	if err != nil || !cfg.ident.bootstrap || cfg.ident.clusterUUID != uuidA {
		t.Fatalf("bootstrap from the environment: %+v, %v", cfg.ident, err)
	}
	if _, err := parseFlags(append(one, "--bootstrap"), env(nil)); err != nil {
		t.Fatalf("one node bootstraps without a UUID: %v", err)
	}
}

func identCfg(t *testing.T, dir string, id domain.NodeID, ic identityConfig) config {
	return config{id: id, dataDir: dir, cluster: map[domain.NodeID]string{1: "a:1", 2: "b:2", 3: "c:3"}, ident: ic}
}

func TestOpenIdentity(t *testing.T) {
	log := zerolog.Nop()
	dir := t.TempDir()
	// An empty data dir without --bootstrap: refused, saying what to do.
	_, err := openIdentity(identCfg(t, dir, 1, identityConfig{}), log)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--bootstrap") || !strings.Contains(err.Error(), "--join") ||
		!strings.Contains(err.Error(), "replace it") {
		t.Fatalf("empty data dir: %v", err)
	}
	if _, err := datadir.Load(dir); !errors.Is(err, domain.ErrNoIdentity) {
		t.Fatalf("a refused start wrote an identity: %v", err)
	}
	if _, err := openIdentity(identCfg(t, dir, 1, identityConfig{forceNew: true}), log); err == nil || !strings.Contains(err.Error(), "nothing") && !strings.Contains(err.Error(), "no data") {
		t.Fatalf("force on an empty dir: %v", err)
	}
	// --bootstrap saves it.
	id, err := openIdentity(identCfg(t, dir, 1, identityConfig{bootstrap: true, clusterUUID: uuidA}), log)
	if err != nil || id != (datadir.Identity{ClusterID: uuidA, NodeID: 1}) {
		t.Fatalf("bootstrap: %+v, %v", id, err)
	}
	// Later starts find it, with or without --bootstrap.
	for _, ic := range []identityConfig{{}, {bootstrap: true, clusterUUID: uuidA}, {clusterUUID: uuidA}} {
		if got, err := openIdentity(identCfg(t, dir, 1, ic), log); err != nil || got != id {
			t.Fatalf("restart with %+v: %+v, %v", ic, got, err)
		}
	}
	// Flags that disagree say which.
	other := datadir.NewUUID()
	if _, err := openIdentity(identCfg(t, dir, 1, identityConfig{bootstrap: true, clusterUUID: other}), log); err == nil ||
		!strings.Contains(err.Error(), uuidA) || !strings.Contains(err.Error(), other) {
		t.Fatalf("another UUID: %v", err)
	}
	if _, err := openIdentity(identCfg(t, dir, 2, identityConfig{}), log); err == nil || !strings.Contains(err.Error(), "--id is 2") {
		t.Fatalf("another id: %v", err)
	}
	// A damaged file is an error, never a fresh start.
	if err := os.WriteFile(filepath.Join(dir, datadir.FileName), []byte("junk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openIdentity(identCfg(t, dir, 1, identityConfig{bootstrap: true, clusterUUID: uuidA}), log); !errors.Is(err, domain.ErrCorrupt) && !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt identity: %v", err)
	}
	// A one-node cluster may bootstrap without a UUID: a random one.
	single := config{id: 1, dataDir: t.TempDir(), cluster: map[domain.NodeID]string{1: "a:1"}, ident: identityConfig{bootstrap: true}}
	if id, err := openIdentity(single, log); err != nil || datadir.CheckUUID(id.ClusterID) != nil {
		t.Fatalf("single node: %+v, %v", id, err)
	}
}

// forceNewCluster keeps every entry, appends {self} at last+1 with a term
// above every term seen, and saves a new UUID.
func TestForceNewCluster(t *testing.T) {
	dir := t.TempDir()
	old := datadir.Identity{ClusterID: uuidA, NodeID: 2}
	if err := datadir.Save(dir, old); err != nil {
		t.Fatal(err)
	}
	logs, votes, sm := memory.NewLogStore(), memory.NewVoteStore(), memory.NewKV()
	var ents []domain.Entry
	for i := 1; i <= 5; i++ {
		ents = append(ents, domain.Entry{Index: domain.Index(i), Term: domain.Term(1 + i/3)})
	}
	if err := logs.Append(ents); err != nil {
		t.Fatal(err)
	}
	if err := votes.SetVote(domain.Vote{Term: 4, VotedFor: 1}); err != nil {
		t.Fatal(err)
	}
	cfg := identCfg(t, dir, 2, identityConfig{forceNew: true})
	id, err := forceNewCluster(cfg, old, logs, votes, sm, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if id.ClusterID == old.ClusterID || id.NodeID != 2 {
		t.Fatalf("new identity %+v", id)
	}
	if saved, err := datadir.Load(dir); err != nil || saved != id {
		t.Fatalf("saved %+v, %v; want %+v", saved, err, id)
	}
	st, err := node.LoadState(logs, votes, sm)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Entries) != 6 || st.Vote.Term != 5 {
		t.Fatalf("after force: %d entries, vote %+v", len(st.Entries), st.Vote)
	}
	last := st.Entries[5]
	m, err := domain.DecodeMembership(last.Data)
	if last.Index != 6 || last.Term != 5 || last.Type != domain.EntryMembership || err != nil ||
		len(m.Voters) != 1 || m.Voters[0] != 2 || len(m.Learners) != 0 {
		t.Fatalf("last entry %+v (membership %+v, %v)", last, m, err)
	}
}
