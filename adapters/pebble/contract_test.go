package pebble_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/seshat-kv/seshat/adapters/pebble"
	"github.com/seshat-kv/seshat/ports"
	"github.com/seshat-kv/seshat/test/contract"
)

// disk is one node's storage for a contract harness: crash keeps only what
// was synced (on a crashable in-memory FS) or, on a real directory, what
// the OS holds, since a process cannot lose its own page cache.
type disk struct {
	t    *testing.T
	mem  *vfs.MemFS // nil for a real directory
	dir  string
	db   *pebble.DB
	fsys vfs.FS
}

func newDisk(t *testing.T, real bool) *disk {
	d := &disk{t: t, dir: "node"}
	if real {
		d.dir, d.fsys = t.TempDir(), vfs.Default
	} else {
		d.mem = vfs.NewCrashableMem()
		d.fsys = d.mem
	}
	d.open()
	t.Cleanup(func() { _ = d.db.Close() })
	return d
}

func (d *disk) open() {
	d.t.Helper()
	db, err := pebble.Open(pebble.Options{Dir: d.dir, FS: d.fsys, CacheSize: 1 << 20})
	if err != nil {
		d.t.Fatalf("open: %v", err)
	}
	d.db = db
}

func (d *disk) crash() {
	d.t.Helper()
	if d.mem != nil {
		clone := d.mem.CrashClone(vfs.CrashCloneCfg{})
		_ = d.db.Close()
		d.mem, d.fsys = clone, clone
	} else {
		_ = d.db.Close()
	}
	d.open()
}

func (d *disk) reopen() {
	d.t.Helper()
	if err := d.db.Close(); err != nil {
		d.t.Fatalf("close: %v", err)
	}
	d.open()
}

func forBothDisks(t *testing.T, run func(t *testing.T, real bool)) {
	t.Run("CrashableMem", func(t *testing.T) { run(t, false) })
	t.Run("TempDir", func(t *testing.T) { run(t, true) })
}

func TestLogStoreContract(t *testing.T) {
	forBothDisks(t, func(t *testing.T, real bool) {
		contract.TestLogStore(t, func(t *testing.T) contract.LogHarness {
			d := newDisk(t, real)
			return contract.LogHarness{
				Store:              d.db.LogStore(),
				Crash:              func() ports.LogStore { d.crash(); return d.db.LogStore() },
				Reopen:             func() ports.LogStore { d.reopen(); return d.db.LogStore() },
				CrashLosesUnsynced: !real,
			}
		})
	})
}

func TestVoteStoreContract(t *testing.T) {
	forBothDisks(t, func(t *testing.T, real bool) {
		contract.TestVoteStore(t, func(t *testing.T) contract.VoteHarness {
			d := newDisk(t, real)
			return contract.VoteHarness{
				Store:  d.db.VoteStore(),
				Crash:  func() ports.VoteStore { d.crash(); return d.db.VoteStore() },
				Reopen: func() ports.VoteStore { d.reopen(); return d.db.VoteStore() },
			}
		})
	})
}

func TestStateMachineContract(t *testing.T) {
	forBothDisks(t, func(t *testing.T, real bool) {
		contract.TestStateMachine(t, func(t *testing.T) contract.SMHarness {
			d := newDisk(t, real)
			kv := func() (ports.StateMachine, ports.KVReader) {
				return d.db.StateMachine(), d.db.StateMachine()
			}
			return contract.SMHarness{
				SM:                 d.db.StateMachine(),
				Reader:             d.db.StateMachine(),
				Crash:              func() (ports.StateMachine, ports.KVReader) { d.crash(); return kv() },
				Reopen:             func() (ports.StateMachine, ports.KVReader) { d.reopen(); return kv() },
				CrashLosesUnsynced: !real,
			}
		})
	})
}
