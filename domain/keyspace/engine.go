package keyspace

import (
	"fmt"

	"github.com/seshat-kv/seshat/domain"
)

// SystemDB is the database the engine keeps its own state in (the last
// applied time stamp); clients cannot select it.
const SystemDB = domain.MaxDatabases - 1

// clockKey holds the greatest time stamp applied so far, in SystemDB.
var clockKey = []byte("clock")

// Client databases are 0 to MaxClientDatabases-1. Database d's deleted
// keys leave a tombstone in database ShadowBase+d for TombstoneTTL: a
// record whose version is the index of the deleting entry. So a key that
// is absent has a version too (0 if it never existed or its tombstone
// expired), and WATCH sees a key created and deleted again since, as
// Redis does.
const (
	MaxClientDatabases = 128
	ShadowBase         = MaxClientDatabases
	TombstoneTTL       = 60_000 // ms
)

// DefaultDatabases is the number of databases when Engine.Databases is 0,
// as Redis's "databases 16".
const DefaultDatabases = 16

// Engine runs commands. Its settings must be the same on every node of a
// cluster, since they change what commands do.
type Engine struct {
	// Databases is the number of numbered databases, at most
	// MaxClientDatabases. Default 16.
	Databases int
	// MaxValueBytes bounds a value a command builds (APPEND, SETRANGE,
	// SETBIT), as Redis's proto-max-bulk-len. Default domain.MaxValueSize.
	MaxValueBytes int
}

func (e Engine) maxValue() int {
	if e.MaxValueBytes <= 0 || e.MaxValueBytes > domain.MaxValueSize {
		return domain.MaxValueSize
	}
	return e.MaxValueBytes
}

// DatabaseCount returns the number of databases, defaults applied.
func (e Engine) DatabaseCount() int { return e.databases() }

func (e Engine) databases() int {
	if e.Databases <= 0 || e.Databases > MaxClientDatabases {
		return DefaultDatabases
	}
	return e.Databases
}

// ctx is one command's run: the store, the time it runs at, and whether
// it may write (inside Apply) or only read.
type ctx struct {
	st       Store
	now      int64  // Unix ms
	index    uint64 // the entry's index; 0 for reads
	write    bool
	db       int
	dbs      int    // the number of databases
	maxValue int    // bytes
	err      error  // the first store error; the run's result is void
	insts    uint64 // collections created by this entry so far
	draws    uint64 // random generators handed out (see rand)
}

func (c *ctx) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// lookup returns key's live record in the current database. An expired
// record is absent; inside a write it is also deleted, as Redis deletes an
// expired key it touches (deterministic here, since now is the entry's).
func (c *ctx) lookup(key []byte) (Record, bool) {
	return c.lookupIn(c.db, key)
}

func (c *ctx) lookupIn(db int, key []byte) (Record, bool) {
	if c.err != nil {
		return Record{}, false
	}
	r, ok, err := c.st.Get(db, key)
	if err != nil {
		c.fail(err)
		return Record{}, false
	}
	if !ok {
		return Record{}, false
	}
	if r.expiredAt(c.now) {
		if c.write {
			c.delIn(db, key)
		}
		return Record{}, false
	}
	return r, true
}

// stat returns key's live record in the current database as lookup
// does, with its value left out and the value's length (Store.Stat): for
// commands that need no more of a string than its length, so that a
// value of hundreds of megabytes is not read.
func (c *ctx) stat(key []byte) (Record, int, bool) { return c.statIn(c.db, key) }

func (c *ctx) statIn(db int, key []byte) (Record, int, bool) {
	if c.err != nil {
		return Record{}, 0, false
	}
	r, n, ok, err := c.st.Stat(db, key)
	if err != nil {
		c.fail(err)
		return Record{}, 0, false
	}
	if !ok {
		return Record{}, 0, false
	}
	if r.expiredAt(c.now) {
		if c.write {
			c.delIn(db, key)
		}
		return Record{}, 0, false
	}
	return r, n, true
}

// statString is stat for a string command: wrong reports a key of
// another type.
func (c *ctx) statString(key []byte) (r Record, size int, ok, wrong bool) {
	r, size, ok = c.stat(key)
	return r, size, ok, ok && r.Type != TypeString
}

// readAt reads len(dst) bytes of key's value from off (Store.ReadAt); the
// caller has them in range.
func (c *ctx) readAt(key []byte, off int, dst []byte) {
	if c.err != nil {
		return
	}
	if err := c.st.ReadAt(c.db, key, off, dst); err != nil {
		c.fail(err)
	}
}

// writeAt writes data at off into the value of key, a string the caller
// found, keeping r's deadline (Store.WriteAt), stamped with this entry's
// version.
func (c *ctx) writeAt(key []byte, r Record, off int, data []byte) {
	c.writeAtIn(c.db, key, r, off, data)
}

func (c *ctx) writeAtIn(db int, key []byte, r Record, off int, data []byte) {
	if !c.writable() {
		return
	}
	r.Version = c.index
	if err := c.st.WriteAt(db, key, r, off, data); err != nil {
		c.fail(err)
	}
}

// keepIn stores again key's live record r in db, as statIn found it with
// a value of size bytes, with its deadline or version changed: a string's
// value stays where it is (WriteAt with no data) instead of being read
// and written whole.
func (c *ctx) keepIn(db int, key []byte, r Record, size int) {
	if r.Type == TypeString {
		c.writeAtIn(db, key, r, size, nil)
		return
	}
	c.putIn(db, key, r)
}

// writable reports whether this run may go on to write: no store error
// so far, and inside Apply (a write in a read fails the run).
func (c *ctx) writable() bool {
	if c.err != nil {
		return false
	}
	if !c.write {
		c.fail(fmt.Errorf("keyspace: internal error: write in a read"))
		return false
	}
	return true
}

// put stores r at key in the current database, stamped with this entry's
// version.
func (c *ctx) put(key []byte, r Record) { c.putIn(c.db, key, r) }

func (c *ctx) putIn(db int, key []byte, r Record) {
	if !c.writable() {
		return
	}
	r.Version = c.index
	if db < ShadowBase {
		c.dropOld(db, key, r.Inst)
	}
	// r.Value often aliases the entry's bytes: a store that keeps it
	// copies it (Store.Put's contract), one that encodes it need not.
	if r.Value == nil {
		r.Value = []byte{}
	}
	if err := c.st.Put(db, key, r); err != nil {
		c.fail(err)
	}
}

// del removes key from the current database.
func (c *ctx) del(key []byte) { c.delIn(c.db, key) }

func (c *ctx) delIn(db int, key []byte) { c.removeIn(db, key, true) }

// removeIn deletes key's record from db, and its elements if drop (not
// when they now belong to another key: RENAME), leaving a tombstone.
func (c *ctx) removeIn(db int, key []byte, drop bool) {
	if c.err != nil {
		return
	}
	if !c.write {
		c.fail(fmt.Errorf("keyspace: internal error: delete in a read"))
		return
	}
	if drop && db < ShadowBase {
		c.dropOld(db, key, 0)
	}
	if err := c.st.Delete(db, key); err != nil {
		c.fail(err)
		return
	}
	if db < ShadowBase && c.now > 0 {
		c.putIn(ShadowBase+db, key, Record{ExpireAt: c.now + TombstoneTTL})
	}
}

// version is what WATCH records for key in db: the index of the entry
// that last wrote it if it is live, else that of its live tombstone, else
// 0.
//
// It never deletes what it finds expired, unlike a command's lookup: a
// key already expired when watched must not count as changed because the
// EXEC's check deleted it (Redis's rule too).
func (c *ctx) version(db int, key []byte) uint64 {
	for _, d := range []int{db, ShadowBase + db} {
		if c.err != nil || d >= SystemDB {
			return 0
		}
		r, _, ok, err := c.st.Stat(d, key)
		if err != nil {
			c.fail(err)
			return 0
		}
		if ok && !r.expiredAt(c.now) {
			return r.Version
		}
	}
	return 0
}

// Apply runs a committed entry's command at index and returns its result.
// Time never goes backwards: the entry runs at the greater of its stamp and
// the greatest stamp applied before, which is kept in the store. An error
// is a store failure; application errors are error replies in the result.
func (e Engine) Apply(st Store, index uint64, cmd domain.Command) (domain.Result, error) {
	var res domain.Result
	c := &ctx{st: st, index: index, write: true, dbs: e.databases(), maxValue: e.maxValue()}
	for _, op := range cmd.Ops {
		switch op.Kind {
		case domain.OpSet:
			c.put(op.Key, Record{Value: op.Value})
			res.N++
		case domain.OpDel:
			// The low-level form carries no time: no tombstone.
			if _, _, ok, err := st.Stat(0, op.Key); err != nil {
				return res, err
			} else if ok {
				if err := st.Delete(0, op.Key); err != nil {
					return res, err
				}
				res.N++
			}
		}
		if c.err != nil {
			return res, c.err
		}
	}
	if len(cmd.Calls) == 0 && !cmd.Tx {
		return res, nil
	}
	now, err := advanceClock(st, index, cmd.Time)
	if err != nil {
		return res, err
	}
	c.now = now
	if cmd.Tx {
		for _, w := range cmd.Watch {
			if w.DB < 0 || w.DB >= c.dbs || !c.watchLive(w.DB, w.Key) || c.version(w.DB, w.Key) != w.Version {
				res.Reply = domain.Reply{Kind: domain.ReplyNilArray}
				return res, c.err
			}
		}
	} else if len(cmd.Calls) == 1 {
		res.Reply = c.run(cmd.Calls[0])
		return res, c.err
	}
	// A transaction, or several calls in one entry (the reaper's): an
	// array of their replies.
	replies := make([]domain.Reply, len(cmd.Calls))
	for i, call := range cmd.Calls {
		replies[i] = c.run(call)
		if c.err != nil {
			return res, c.err
		}
	}
	res.Reply = domain.ArrayReply(replies...)
	return res, nil
}

// advanceClock returns the time an entry stamped t runs at and records it.
func advanceClock(st Store, index uint64, t int64) (int64, error) {
	now, err := Clock(st)
	if err != nil {
		return 0, err
	}
	if t <= now {
		return now, nil
	}
	var b [8]byte
	putUint64(b[:], uint64(t))
	if err := st.Put(SystemDB, clockKey, Record{Value: b[:], Version: index}); err != nil {
		return 0, err
	}
	return t, nil
}

// Clock returns the greatest time stamp applied to st (Unix ms), 0 if none.
func Clock(st Store) (int64, error) {
	r, ok, err := st.Get(SystemDB, clockKey)
	if err != nil || !ok {
		return 0, err
	}
	if len(r.Value) != 8 {
		return 0, fmt.Errorf("keyspace: clock record: %w", domain.ErrCorrupt)
	}
	return int64(getUint64(r.Value)), nil
}

func putUint64(b []byte, v uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func getUint64(b []byte) uint64 {
	var v uint64
	for _, x := range b[:8] {
		v = v<<8 | uint64(x)
	}
	return v
}

// Read runs a read-only call over st at time now (Unix ms; the caller
// passes the greater of its clock and Clock(st), so that a key the applied
// state has expired stays expired). It refuses a write command.
func (e Engine) Read(st Store, now int64, call domain.Call) (domain.Reply, error) {
	spec := Lookup(call.Args[0])
	if spec == nil || spec.Flags&Write != 0 {
		return domain.Reply{}, fmt.Errorf("keyspace: %q is not a read command", call.Args[0])
	}
	c := &ctx{st: st, now: now, dbs: e.databases(), maxValue: e.maxValue()}
	r := c.run(call)
	return r, c.err
}

// KeyVersion returns the version a WATCH of key in db records at now: the
// index of the entry that last wrote or deleted it (see ShadowBase), or 0.
func KeyVersion(st Store, now int64, db int, key []byte) (uint64, error) {
	c := &ctx{st: st, now: now}
	v := c.version(db, key)
	return v, c.err
}

// run checks a call against the command table and runs it.
func (c *ctx) run(call domain.Call) domain.Reply {
	if len(call.Args) == 0 {
		return domain.ErrorReply("ERR empty command")
	}
	spec := Lookup(call.Args[0])
	if spec == nil {
		return UnknownCommand(call.Args)
	}
	if !spec.ArityOK(len(call.Args)) {
		return WrongArity(spec.Name)
	}
	if spec.Flags&Write != 0 && !c.write {
		return domain.ErrorReply("ERR internal error: write command in a read")
	}
	if call.DB < 0 || call.DB >= c.dbs {
		return domain.ErrorReply("ERR DB index is out of range")
	}
	c.db = call.DB
	return spec.run(c, call.Args)
}
