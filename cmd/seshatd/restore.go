package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/adapters/backupfile"
	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/adapters/pebble"
	"github.com/seshat-kv/seshat/domain"
)

// runRestore is `seshatd restore --in FILE --data-dir DIR --id N`: it
// checks FILE whole, then builds a new node's data dir from it, the only
// voter of a new cluster. DIR must not exist or be empty; the data is
// built in a sibling directory renamed to DIR once complete, so a failure
// at any point leaves DIR as it was.
func runRestore(args []string, env func(string) string) error {
	fs := subFlags("restore")
	in := fs.String("in", "", "backup file written by seshatd backup")
	dir := fs.String("data-dir", "", "data dir of the new node (must not exist, or be empty)")
	id := fs.Uint64("id", 0, "node id of the new node: the only voter of the new cluster")
	if err := parseSub(fs, "--in FILE --data-dir DIR --id N", args, env); err != nil {
		return err
	}
	switch {
	case *in == "":
		return badConfig("restore: --in FILE is required")
	case *dir == "":
		return badConfig("restore: --data-dir DIR is required")
	case *id == 0:
		return badConfig("restore: --id is required and must be non-zero")
	}
	if err := checkEmptyDir(*dir); err != nil {
		return err
	}
	log := toolLogger("restore")
	start := time.Now()
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	info, body, err := backupfile.Open(f, st.Size())
	if err != nil {
		return fmt.Errorf("restore: %s refused, nothing written: %w", *in, err)
	}
	log.Info().Str("file", *in).Uint64("index", uint64(info.Meta.Index)).Uint64("term", uint64(info.Meta.Term)).
		Int64("bytes", info.BodyLen).Time("taken", info.Created).Uint64("from_node", uint64(info.From)).
		Msg("backup file checked")
	if err := restoreDir(*dir, domain.NodeID(*id), info, body, log); err != nil {
		return err
	}
	log.Info().Str("data_dir", *dir).Uint64("id", *id).Dur("elapsed", time.Since(start)).
		Msg("restored: start it with seshatd --id N --data-dir DIR --cluster N=peer-host:port; it is the only voter of a new cluster")
	return nil
}

// checkEmptyDir refuses a dir that holds anything.
func checkEmptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return badConfig("restore: data dir %s: %v", dir, err)
	case len(ents) > 0:
		return badConfig("restore: data dir %s is not empty: restore creates a new node, give it a new dir", dir)
	}
	return nil
}

// restoreDir builds dir from a checked backup: the state machine from its
// image, then a membership of id alone at the next index, and the image's
// term as the current term, so that the node starts as the only voter of a
// new cluster and its first election is in a later term.
func restoreDir(dir string, id domain.NodeID, info backupfile.Info, body io.Reader, log zerolog.Logger) (err error) {
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".restoring-*")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := buildDir(tmp, id, info, body, log); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore: %w", err) // not empty any more: someone wrote to it
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return syncDir(parent)
}

func buildDir(dir string, id domain.NodeID, info backupfile.Info, body io.Reader, log zerolog.Logger) (err error) {
	plog := log.Level(zerolog.WarnLevel)
	db, err := pebble.Open(pebble.Options{Dir: dir, Logger: &plog})
	if err != nil {
		return fmt.Errorf("restore: open %s: %w", dir, err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("restore: close: %w", cerr)
		}
	}()
	sm := db.StateMachine()
	pr := &progressReader{r: body, total: info.BodyLen, last: time.Now(), log: log}
	if err := sm.Restore(info.Meta, pr); err != nil {
		return fmt.Errorf("restore: the image does not restore: %w", err)
	}
	mem := domain.Membership{Voters: []domain.NodeID{id}}
	next := domain.Entry{Index: info.Meta.Index + 1, Term: info.Meta.Term, Type: domain.EntryMembership, Data: domain.EncodeMembership(mem)}
	if _, err := sm.Apply([]domain.Entry{next}); err != nil {
		return fmt.Errorf("restore: membership: %w", err)
	}
	if err := sm.Sync(); err != nil {
		return fmt.Errorf("restore: sync: %w", err)
	}
	if err := db.VoteStore().SetVote(domain.Vote{Term: info.Meta.Term}); err != nil {
		return fmt.Errorf("restore: vote: %w", err)
	}
	uuid, err := saveRestoredIdentity(dir, id)
	if err != nil {
		return fmt.Errorf("restore: identity: %w", err)
	}
	log.Info().Uint64("index", uint64(next.Index)).Uint64("voter", uint64(id)).Str("cluster_uuid", uuid).
		Msg("state restored: a new cluster, this node its only voter")
	return nil
}

// saveRestoredIdentity gives the restored data dir a new cluster identity:
// a new UUID, so that no node of the cluster the backup came from can
// ever talk to it (their handshakes are refused).
func saveRestoredIdentity(dir string, id domain.NodeID) (string, error) {
	uuid := datadir.NewUUID()
	return uuid, datadir.Save(dir, datadir.Identity{ClusterID: uuid, NodeID: id})
}

// progressReader logs how much of the image a long restore has read.
type progressReader struct {
	r     io.Reader
	n     int64
	total int64
	last  time.Time
	log   zerolog.Logger
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if now := time.Now(); now.Sub(p.last) >= backupProgressEvery {
		p.last = now
		p.log.Info().Int64("bytes", p.n).Int64("of", p.total).Msg("restore: writing")
	}
	return n, err
}
