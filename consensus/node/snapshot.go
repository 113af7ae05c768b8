package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// snapshotSends tracks the snapshot sends under way (one per follower at
// a time) and the file-backed snapshots received and not yet installed.
type snapshotSends struct {
	sending map[domain.NodeID]bool
	// received are the snapshots held in files (Snapshot.File) stepped
	// into the core since it last handed out a Ready: the core holds at
	// most one of them for installation, and the others' files must go.
	received []*domain.Snapshot
}

func (s *snapshotSends) init() { s.sending = map[domain.NodeID]bool{} }

// sendSnapshot asks the runner to fill m with the state machine's current
// image and send it (Output.Snapshots). A request for a follower that
// already has one on its way is dropped, as the core hears of the one
// under way through SnapshotSent.
func (d *Driver) sendSnapshot(m domain.Message) {
	if d.snaps.sending[m.To] {
		return
	}
	d.snaps.sending[m.To] = true
	d.out.Snapshots = append(d.out.Snapshots, m)
}

// SnapshotSent reports the fate of a snapshot send asked for in
// Output.Snapshots: err nil if the transport took it.
func (d *Driver) SnapshotSent(to domain.NodeID, err error) {
	delete(d.snaps.sending, to)
	if err != nil {
		d.log.Debug().Err(err).Uint64("to", uint64(to)).Msg("snapshot send failed")
	}
	d.core.ReportSnapshot(to, err == nil)
}

// snapshotStepped notes a received snapshot held in a file, whose file
// the node must delete if the core does not install it.
func (d *Driver) snapshotStepped(m domain.Message) {
	if m.Type == domain.MsgSnap && m.Snapshot != nil && m.Snapshot.File != "" {
		d.snaps.received = append(d.snaps.received, m.Snapshot)
	}
}

// snapshotsTaken is called as a Ready is taken: the core has handed out
// the snapshot it kept to install (install, possibly nil), and every
// other received one stepped before is refused (stale, or replaced by a
// later one): the runner deletes their files.
func (d *Driver) snapshotsTaken(install *domain.Snapshot) {
	for _, s := range d.snaps.received {
		if s != install {
			d.out.Discard = append(d.out.Discard, s)
		}
	}
	clear(d.snaps.received)
	d.snaps.received = d.snaps.received[:0]
}

// snapshotsIdle discards the received snapshots once the core has no
// Ready to hand out while nothing is in flight: it then holds no
// snapshot to install.
func (d *Driver) snapshotsIdle() {
	if len(d.snaps.received) > 0 && d.inflight == nil && d.held == nil && !d.core.HasReady() {
		d.snapshotsTaken(nil)
	}
}

// snapshotInstalled updates the driver once a leader's snapshot is
// installed: the state machine is at meta.Index, and proposals at or below
// it cannot be told apart any more.
func (d *Driver) snapshotInstalled(meta domain.SnapshotMeta) {
	d.applied = meta.Index
	d.issued, d.issuedAll = meta.Index, meta.Index
	d.compact.at = meta.Index
	d.compact.bytes = 0
	d.compact.purged = max(d.compact.purged, meta.Index)
	d.compact.dropSized(meta.Index)
	d.proposalsReplaced(meta.Index)
	d.serveReads()
}

// Snapshot image files. A node with Config.SnapshotDir writes the image of
// each snapshot it sends to a file there, named after
// snapshotFilePattern, and gives it to the transport, which removes it
// once sent or dropped; a received image held in a file is removed once
// installed (restoreSnapshot) or refused (Output.Discard). Start deletes
// the files of this pattern a previous run left: only those, so the
// directory may be shared with a transport's spool of received images.
const (
	snapshotFilePattern = "seshat-snapshot-*.out"
	// snapshotIOBuffer is the buffer between the state machine's image
	// and its file, both ways: large enough that the file sees few
	// system calls, small enough not to matter in memory.
	snapshotIOBuffer = 1 << 20
)

// prepareSnapshotDir creates dir and deletes the image files a previous
// run left in it. It returns how many it deleted.
func prepareSnapshotDir(dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("snapshot dir: %w", err)
	}
	stale, err := filepath.Glob(filepath.Join(dir, snapshotFilePattern))
	if err != nil {
		return 0, fmt.Errorf("snapshot dir: %w", err)
	}
	for _, p := range stale {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("snapshot dir: remove stale image: %w", err)
		}
	}
	return len(stale), nil
}

// takeSnapshot writes the state machine's current image, to a file of
// dir if dir is set (the snapshot then refers to it), else in memory.
func takeSnapshot(sm ports.StateMachine, dir string) (*domain.Snapshot, error) {
	if dir == "" {
		var buf bytes.Buffer
		meta, err := sm.Snapshot(&buf)
		if err != nil {
			return nil, err
		}
		return &domain.Snapshot{Meta: meta, Data: buf.Bytes()}, nil
	}
	f, err := os.CreateTemp(dir, snapshotFilePattern)
	if err != nil {
		return nil, fmt.Errorf("snapshot file: %w", err)
	}
	bw := bufio.NewWriterSize(f, snapshotIOBuffer)
	meta, err := sm.Snapshot(bw)
	if err == nil {
		err = bw.Flush()
	}
	// No sync: the file lives only as long as this process sends it.
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("snapshot to %s: %w", f.Name(), err)
	}
	return &domain.Snapshot{Meta: meta, File: f.Name()}, nil
}

// sendSnapshot fills m with the state machine's current image and sends
// it, on a goroutine of its own; the loop hears of the result on snapc.
func (n *Node) sendSnapshot(m domain.Message) {
	n.snapWG.Add(1)
	go func() {
		defer n.snapWG.Done()
		start := time.Now()
		s, err := takeSnapshot(n.cfg.StateMachine, n.cfg.SnapshotDir)
		if err == nil {
			n.log.Debug().Uint64("to", uint64(m.To)).Uint64("index", uint64(s.Meta.Index)).Str("file", s.File).
				Dur("took", time.Since(start)).Msg("snapshot image taken")
			m.Snapshot = s
			// The transport owns the file from here on, whatever Send
			// returns (ports.Transport).
			err = n.cfg.Transport.Send(m)
		} else {
			n.log.Error().Err(err).Uint64("to", uint64(m.To)).Msg("state machine snapshot failed")
		}
		select {
		case n.snapc <- snapResult{to: m.To, err: err}:
		case <-n.loopDone:
		}
	}()
}

// restoreSnapshot restores sm from s's image: from its file if it has one,
// read through a buffer so that the image is never whole in memory, then
// deletes the file whatever the outcome (a failed install stops the node;
// the leader sends a new image when it restarts).
func restoreSnapshot(sm ports.StateMachine, s *domain.Snapshot) error {
	if s.File == "" {
		return sm.Restore(s.Meta, bytes.NewReader(s.Data))
	}
	defer func() { _ = os.Remove(s.File) }()
	f, err := os.Open(s.File)
	if err != nil {
		return fmt.Errorf("snapshot file: %w", err)
	}
	defer f.Close()
	return sm.Restore(s.Meta, bufio.NewReaderSize(f, snapshotIOBuffer))
}

// discardSnapshots deletes the files of received snapshots the core
// refused (Output.Discard).
func (n *Node) discardSnapshots(snaps []*domain.Snapshot) {
	for _, s := range snaps {
		err := os.Remove(s.File)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			n.log.Warn().Err(err).Str("file", s.File).Msg("cannot delete a refused snapshot's file")
			continue
		}
		n.log.Debug().Uint64("index", uint64(s.Meta.Index)).Str("file", s.File).Msg("refused snapshot's file deleted")
	}
}
