package contract

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

// The keyspace part of the state machine contract: a state machine runs
// Redis commands (domain.Command calls) over its own keyspace.Store, and
// must answer and end exactly as the engine does over the reference
// keyspace.MapStore: the same replies, and per database the same keys,
// records (values, deadlines, versions) and counts, in SCAN's (hash, key)
// order.

// ksDump is a whole keyspace as a Store shows it.
type ksDump struct {
	DBs map[int][]ksRow
	Len map[int][2]int64
}

type ksRow struct {
	Key string
	Rec keyspace.Record
	// Elems are a collection's elements, sub-key and value alternately,
	// in sub-key order.
	Elems []string
}

// ksDBs are the databases the scripts use, and the engine's own.
var ksDBs = []int{0, 1, 2, 3, keyspace.SystemDB}

func dumpStore(t *testing.T, st keyspace.Store) ksDump {
	t.Helper()
	d := ksDump{DBs: map[int][]ksRow{}, Len: map[int][2]int64{}}
	for _, db := range ksDBs {
		err := st.Scan(db, 0, func(k []byte, r keyspace.Record) bool {
			if r.Value != nil {
				t.Errorf("Scan(%d): key %q comes with its value", db, k)
			}
			d.DBs[db] = append(d.DBs[db], ksRow{Key: string(k), Rec: r})
			return true
		})
		if err != nil {
			t.Fatalf("Scan(%d): %v", db, err)
		}
		for i, row := range d.DBs[db] {
			d.DBs[db][i].Rec.Value = storedValue(t, st, db, row)
			if row.Rec.Inst == 0 {
				continue
			}
			err := st.ElemScan(db, row.Rec.Inst, nil, false, func(sub, val []byte) bool {
				d.DBs[db][i].Elems = append(d.DBs[db][i].Elems, string(sub), string(val))
				return true
			})
			if err != nil {
				t.Fatalf("ElemScan(%d, %d): %v", db, row.Rec.Inst, err)
			}
			if want := row.Rec.Count; row.Rec.Type != keyspace.TypeZSet && int64(len(d.DBs[db][i].Elems)/2) != want {
				t.Fatalf("db %d key %q: %d elements stored, record counts %d", db, row.Key, len(d.DBs[db][i].Elems)/2, want)
			}
		}
		keys, exp, err := st.Len(db)
		if err != nil {
			t.Fatalf("Len(%d): %v", db, err)
		}
		d.Len[db] = [2]int64{keys, exp}
	}
	return d
}

func dumpReader(t *testing.T, r ports.KVReader) ksDump {
	t.Helper()
	var d ksDump
	if err := r.View(func(st keyspace.Store) error { d = dumpStore(t, st); return nil }); err != nil {
		t.Fatalf("View: %v", err)
	}
	return d
}

// storedValue reads row's value through Get, and checks that Stat and
// ReadAt (of a few parts) agree with it.
func storedValue(t *testing.T, st keyspace.Store, db int, row ksRow) []byte {
	t.Helper()
	key := []byte(row.Key)
	r, ok, err := st.Get(db, key)
	if err != nil || !ok {
		t.Fatalf("db %d key %q: scanned, then Get: %v, %v", db, key, ok, err)
	}
	v := bytes.Clone(r.Value)
	sr, size, ok, err := st.Stat(db, key)
	r.Value = nil
	if err != nil || !ok || size != len(v) || !reflect.DeepEqual(sr, r) {
		t.Fatalf("db %d key %q: Stat = %+v, %d, %v, %v; Get gave %+v with %d bytes", db, key, sr, size, ok, err, r, len(v))
	}
	for _, part := range [][2]int{{0, len(v)}, {len(v) / 3, len(v) / 3}, {len(v) - min(len(v), 5), min(len(v), 5)}} {
		got := make([]byte, part[1])
		if err := st.ReadAt(db, key, part[0], got); err != nil || !bytes.Equal(got, v[part[0]:part[0]+part[1]]) {
			t.Fatalf("db %d key %q: ReadAt(%d, %d bytes) differs from Get's value (err %v)", db, key, part[0], part[1], err)
		}
	}
	return v
}

// diffDumps is cmp.Diff of two dumps, after reflect.DeepEqual: cmp
// compares values of megabytes byte by byte, taking seconds each.
func diffDumps(want, got ksDump) string {
	if reflect.DeepEqual(want, got) {
		return ""
	}
	return cmp.Diff(want, got)
}

// ksScript returns n random write entries' commands from seed: strings,
// deadlines a few milliseconds away (so that keys expire during the run),
// and the database-wide commands.
func ksScript(seed uint64, n int) []domain.Command {
	rng := rand.New(rand.NewPCG(seed, 7))
	key := func() string { return fmt.Sprintf("k%d", rng.IntN(12)) }
	now := int64(1_700_000_000_000)
	var out []domain.Command
	call := func() domain.Call {
		var args []string
		switch rng.IntN(20) {
		case 0:
			// A WATCH's registration: SWAPDB and FLUSHDB touch the
			// watched keys they change, rewriting their records.
			args = []string{keyspace.WatchCommand, fmt.Sprint(rng.IntN(4)), key(), key()}
		case 1:
			args = []string{"GET", key()}
		default:
			if rng.IntN(2) == 0 {
				args = collectionCommand(rng, key)
			} else {
				args = stringCommand(rng, key)
			}
		}
		return ksCall(rng.IntN(4), args...)
	}
	for range n {
		now += int64(rng.IntN(4))
		cmd := domain.Command{Time: now, Calls: []domain.Call{call()}}
		if rng.IntN(6) == 0 {
			// A transaction: a database-wide command after a write of the
			// same entry must see that write.
			cmd.Tx = true
			for range 1 + rng.IntN(3) {
				cmd.Calls = append(cmd.Calls, call())
			}
			if rng.IntN(2) == 0 {
				// Often a SWAPDB of the first call's database last: it
				// touches the watched keys, rewriting what it reads.
				db := cmd.Calls[0].DB
				cmd.Calls = append(cmd.Calls, domain.Call{DB: db, Args: [][]byte{
					[]byte("SWAPDB"), []byte(fmt.Sprint(db)), []byte(fmt.Sprint((db + 1 + rng.IntN(3)) % 4))}})
			}
		}
		out = append(out, cmd)
	}
	return out
}

// stringCommand is a random command of strings, keys and databases.
func stringCommand(rng *rand.Rand, key func() string) []string {
	var args []string
	{
		switch rng.IntN(14) {
		case 0, 1, 2:
			args = []string{"SET", key(), fmt.Sprint(rng.IntN(100))}
			if rng.IntN(3) == 0 {
				args = append(args, "PX", fmt.Sprint(1+rng.IntN(10)))
			}
		case 3:
			args = []string{"DEL", key(), key()}
		case 4:
			args = []string{"INCR", key()}
		case 5:
			args = []string{"APPEND", key(), "x"}
		case 6:
			args = []string{"PEXPIRE", key(), fmt.Sprint(rng.IntN(8))}
		case 7:
			args = []string{"MOVE", key(), fmt.Sprint(rng.IntN(4))}
		case 8:
			args = []string{"COPY", key(), key(), "DB", fmt.Sprint(rng.IntN(4))}
		case 9:
			args = []string{"SWAPDB", fmt.Sprint(rng.IntN(4)), fmt.Sprint(rng.IntN(4))}
		case 10:
			if rng.IntN(4) == 0 {
				args = []string{"FLUSHDB"}
			} else {
				args = []string{"GETDEL", key()}
			}
		case 11:
			args = []string{"RENAME", key(), key()}
		case 12:
			args = []string{"PERSIST", key()}
		default:
			args = []string{"MSET", key(), "a", key(), "b"}
		}
	}
	return args
}

// collectionCommand is a random command of hashes, sets, sorted sets or
// lists, some of them large enough that Pebble range-deletes them.
func collectionCommand(rng *rand.Rand, key func() string) []string {
	member := func() string { return fmt.Sprintf("m%d", rng.IntN(40)) }
	many := func(cmd ...string) []string {
		for range 1 + rng.IntN(30) {
			cmd = append(cmd, member())
		}
		return cmd
	}
	switch rng.IntN(6) {
	case 0:
		args := []string{"HSET", key()}
		for range 1 + rng.IntN(25) {
			args = append(args, member(), fmt.Sprint(rng.IntN(100)))
		}
		return args
	case 1:
		return many("HDEL", key())
	case 2:
		return []string{"HINCRBY", key(), member(), fmt.Sprint(rng.IntN(10))}
	default:
		return moreCollectionCommands(rng, key, member, many)
	}
}

// smKeyspaceMatchesEngine applies a random script to the state machine and
// to the engine over a MapStore, comparing every reply, and the whole
// keyspace every few entries and after a snapshot and restore.
func smKeyspaceMatchesEngine(t *testing.T, open func(t *testing.T) SMHarness) {
	for _, seed := range []uint64{1, 2, 3} {
		h := open(t)
		ref := keyspace.NewMapStore()
		var e keyspace.Engine
		script := ksScript(seed, 600)
		for i, cmd := range script {
			index := domain.Index(i + 1)
			res, err := h.SM.Apply([]domain.Entry{{Index: index, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}})
			if err != nil {
				t.Fatalf("seed %d entry %d: Apply: %v", seed, index, err)
			}
			want, err := e.Apply(ref, uint64(index), cmd)
			if err != nil {
				t.Fatalf("seed %d entry %d: reference: %v", seed, index, err)
			}
			if d := cmp.Diff(want.Reply, res[0].Reply); d != "" {
				t.Fatalf("seed %d entry %d %q: reply (-engine +state machine):\n%s", seed, index, cmd.Calls[0].Args, d)
			}
			if i%50 == 49 || i == len(script)-1 {
				if d := diffDumps(dumpStore(t, ref), dumpReader(t, h.Reader)); d != "" {
					t.Fatalf("seed %d after entry %d: keyspace (-engine +state machine):\n%s", seed, index, d)
				}
			}
		}
		var image bytes.Buffer
		meta, err := h.SM.Snapshot(&image)
		if err != nil {
			t.Fatal(err)
		}
		other := open(t)
		if err := other.SM.Restore(meta, &image); err != nil {
			t.Fatalf("seed %d: Restore: %v", seed, err)
		}
		if d := diffDumps(dumpStore(t, ref), dumpReader(t, other.Reader)); d != "" {
			t.Fatalf("seed %d: keyspace after snapshot and restore (-engine +restored):\n%s", seed, d)
		}
	}
}

// smKeyspaceCrash: database-wide changes (FLUSHDB, SWAPDB) after the last
// Sync roll back with the rest on a crash that loses unsynced state.
func smKeyspaceCrash(t *testing.T, h SMHarness) {
	script := ksScript(9, 200)
	ref := keyspace.NewMapStore()
	var e keyspace.Engine
	apply := func(sm ports.StateMachine, i int, cmd domain.Command) {
		t.Helper()
		if _, err := sm.Apply([]domain.Entry{{Index: domain.Index(i + 1), Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}}); err != nil {
			t.Fatalf("Apply %d: %v", i+1, err)
		}
	}
	for i, cmd := range script[:150] {
		apply(h.SM, i, cmd)
		if _, err := e.Apply(ref, uint64(i+1), cmd); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.SM.Sync(); err != nil {
		t.Fatal(err)
	}
	synced := dumpStore(t, ref)
	for i, cmd := range script[150:] {
		apply(h.SM, 150+i, cmd)
	}
	flush := domain.Command{Time: 1_800_000_000_000, Calls: []domain.Call{
		{DB: 0, Args: [][]byte{[]byte("SWAPDB"), []byte("0"), []byte("1")}},
		{DB: 2, Args: [][]byte{[]byte("FLUSHDB")}},
	}}
	apply(h.SM, 200, flush)
	sm, r := h.Crash()
	applied, err := sm.Applied()
	if err != nil {
		t.Fatal(err)
	}
	if h.CrashLosesUnsynced {
		if applied.Index != 150 {
			t.Fatalf("applied %d after the crash, want the synced 150", applied.Index)
		}
		if d := cmp.Diff(synced, dumpReader(t, r)); d != "" {
			t.Fatalf("keyspace after the crash (-synced +got):\n%s", d)
		}
	}
	// Whatever survived, replaying the rest of the log ends in the state
	// the engine computes.
	for i := int(applied.Index); i < 201; i++ {
		cmd := flush
		if i < 200 {
			cmd = script[i]
		}
		apply(sm, i, cmd)
	}
	for i := 150; i < 201; i++ {
		cmd := flush
		if i < 200 {
			cmd = script[i]
		}
		if _, err := e.Apply(ref, uint64(i+1), cmd); err != nil {
			t.Fatal(err)
		}
	}
	if d := diffDumps(dumpStore(t, ref), dumpReader(t, r)); d != "" {
		t.Fatalf("keyspace after replay (-engine +got):\n%s", d)
	}
}

// moreCollectionCommands covers the types after hashes.
func moreCollectionCommands(rng *rand.Rand, key func() string, member func() string, many func(...string) []string) []string {
	switch rng.IntN(14) {
	case 10, 11:
		return many([]string{"LPUSH", "RPUSH"}[rng.IntN(2)], key())
	case 12:
		return []string{[]string{"LPOP", "RPOP"}[rng.IntN(2)], key(), fmt.Sprint(rng.IntN(5))}
	case 13:
		switch rng.IntN(4) {
		case 0:
			return []string{"LTRIM", key(), fmt.Sprint(rng.IntN(5)), fmt.Sprint(rng.IntN(20) - 5)}
		case 1:
			return []string{"LREM", key(), fmt.Sprint(rng.IntN(5) - 2), member()}
		case 2:
			return []string{"LINSERT", key(), "BEFORE", member(), member()}
		default:
			return []string{"LMOVE", key(), key(), "LEFT", "RIGHT"}
		}
	case 5, 6:
		args := []string{"ZADD", key()}
		for range 1 + rng.IntN(25) {
			args = append(args, fmt.Sprint(rng.IntN(10)-5), member())
		}
		return args
	case 7:
		return many("ZREM", key())
	case 8:
		return []string{"ZPOPMIN", key(), fmt.Sprint(rng.IntN(5))}
	case 9:
		return []string{"ZREMRANGEBYSCORE", key(), fmt.Sprint(rng.IntN(10) - 5), "+inf"}
	case 0:
		return many("SADD", key())
	case 1:
		return many("SREM", key())
	case 2:
		return []string{"SPOP", key(), fmt.Sprint(rng.IntN(4))}
	case 3:
		return []string{[]string{"SUNIONSTORE", "SINTERSTORE", "SDIFFSTORE"}[rng.IntN(3)], key(), key(), key()}
	default:
		return []string{"SMOVE", key(), key(), member()}
	}
}

// smKeyspaceLargeElements: collection elements larger than a Pebble chunk
// (1 MiB) written, overwritten both ways, deleted, moved and dropped with
// their collection, answering and ending as the engine does over the
// reference store, across a reopen and a snapshot and restore.
func smKeyspaceLargeElements(t *testing.T, open func(t *testing.T) SMHarness) {
	// Tags of 7 bytes: no two chunks of a value are alike.
	big := func(tag string, n int) string { return strings.Repeat(tag+"123456", n/7+1)[:n] }
	const mib = 1 << 20
	script := [][]string{
		{"HSET", "h", "f", big("a", 3*mib+7), "g", "small"},
		{"HSET", "h", "f", "tiny"},
		{"HSET", "h", "g", big("b", mib+1), "k", big("k", mib)},
		{"HSET", "h", "g", big("c", 2*mib)},
		{"HGETALL", "h"},
		{"HDEL", "h", "k"},
		{"RPUSH", "l", big("d", 2*mib+1), "x", big("e", mib+2)},
		{"LSET", "l", "1", big("f", mib+5)},
		{"LSET", "l", "0", "y"},
		{"LRANGE", "l", "0", "-1"},
		{"LPOP", "l"},
		{"COPY", "h", "h2"},
		{"SET", "h", "a string now"},
		{"HSET", "e", "f", big("g", mib+3)},
		{"PEXPIRE", "e", "1"},
		{"HSET", "e", "x", "y"},
		{"RPUSH", "many", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", big("m", mib+1)},
		{"DEL", "many"},
		{"HSET", "h3", "f", big("h", 2*mib+9)},
	}
	smKeyspaceScript(t, open, script)
}

// smKeyspaceLargeStrings: string values larger than a Pebble chunk read
// and changed in part (APPEND, SETRANGE, SETBIT, GETRANGE, GETBIT, a new
// deadline), in chunks and across their boundaries, answering and ending
// as the engine does over the reference store, across a reopen and a
// snapshot and restore.
func smKeyspaceLargeStrings(t *testing.T, open func(t *testing.T) SMHarness) {
	big := func(tag string, n int) string { return strings.Repeat(tag+"123456", n/7+1)[:n] }
	const mib = 1 << 20
	n := func(i int) string { return fmt.Sprint(i) }
	script := [][]string{
		{"SET", "s", big("a", 3*mib+7)},
		{"APPEND", "s", "tail"},
		{"APPEND", "s", big("b", mib-11)},
		{"APPEND", "s", big("c", 2*mib+5)},
		{"SETRANGE", "s", "10", "xy"},
		{"SETRANGE", "s", n(mib - 3), "across"},
		{"SETRANGE", "s", n(mib / 2), big("d", 2*mib)},
		{"SETRANGE", "s", n(9*mib + 1), "past the end"},
		{"SETBIT", "s", n(8*(2*mib+1) + 3), "1"},
		{"SETBIT", "s", n(8*11*mib + 1), "1"},
		{"GETRANGE", "s", n(mib - 5), n(mib + 5)},
		{"GETRANGE", "s", "-20", "-1"},
		{"GETBIT", "s", n(8*(2*mib+1) + 3)},
		{"STRLEN", "s"},
		{"PEXPIRE", "s", "100000"},
		{"APPEND", "s", "x"},
		{"PERSIST", "s"},
		{"SET", "small", "v"},
		{"APPEND", "small", big("e", mib)},
		{"SETRANGE", "new", n(mib + 3), "x"},
		{"SETBIT", "bits", n(8 * (mib + 9)), "0"},
		{"COPY", "s", "s2"},
		{"APPEND", "s2", "copy"},
		{"RENAME", "new", "renamed"},
		{"SETRANGE", "renamed", "0", "r"},
		{"GET", "small"},
		{"DEL", "bits"},
	}
	smKeyspaceScript(t, open, script)
}

// smKeyspaceWatchedSwap: a transaction writes keys that are watched,
// then SWAPDB moves them, which touches every watched key it changes
// (rewrites its record with a new version). The touch must read what the
// transaction wrote, not the record committed before it, which a store
// may still cache: otherwise the write is silently undone. Found by
// TestCompat (a PEXPIRE lost this way).
func smKeyspaceWatchedSwap(t *testing.T, open func(t *testing.T) SMHarness) {
	tx := func(calls ...domain.Call) domain.Command { return domain.Command{Tx: true, Calls: calls} }
	one := func(db int, args ...string) domain.Command {
		return domain.Command{Calls: []domain.Call{ksCall(db, args...)}}
	}
	script := []domain.Command{
		one(0, "SET", "s", "v0"),
		one(0, "HSET", "h", "f", "1"),
		one(1, "ZADD", "z", "1", "a"),
		one(1, "SET", "t", "old"),
		one(0, keyspace.WatchCommand, "0", "s", "h"),
		one(0, keyspace.WatchCommand, "1", "z", "t"),
		// Reads in entries: what they find is cached.
		tx(ksCall(0, "GET", "s"), ksCall(0, "TYPE", "h"), ksCall(1, "TYPE", "z"), ksCall(1, "GET", "t")),
		tx(ksCall(0, "SET", "s", "v1"), ksCall(0, "PEXPIRE", "h", "100000"),
			ksCall(1, "PEXPIRE", "z", "100000"), ksCall(1, "APPEND", "t", "+new"),
			ksCall(0, "SWAPDB", "0", "1")),
		tx(ksCall(1, "GET", "s"), ksCall(0, "GET", "t")),
		tx(ksCall(1, "PERSIST", "h"), ksCall(1, "SET", "s", "v2", "KEEPTTL"), ksCall(0, "SWAPDB", "1", "0")),
		tx(ksCall(0, "DEL", "s"), ksCall(1, "SET", "t", "v3"), ksCall(1, "SWAPDB", "0", "1"), ksCall(0, "GET", "t")),
		tx(ksCall(0, "SET", "t", "v4"), ksCall(0, "FLUSHDB"), ksCall(1, "GET", "s")),
	}
	smKeyspaceCommands(t, open, script)
}

// smKeyspaceScript runs script (one call an entry) on a state machine
// from open and on the engine over the reference store, and checks the
// replies and the keyspace after each, after a reopen, and after a
// snapshot restored into another.
func smKeyspaceScript(t *testing.T, open func(t *testing.T) SMHarness, script [][]string) {
	var cmds []domain.Command
	for _, args := range script {
		cmds = append(cmds, domain.Command{Calls: []domain.Call{ksCall(0, args...)}})
	}
	smKeyspaceCommands(t, open, cmds)
}

func ksCall(db int, args ...string) domain.Call {
	call := domain.Call{DB: db}
	for _, a := range args {
		call.Args = append(call.Args, []byte(a))
	}
	return call
}

// smKeyspaceCommands is smKeyspaceScript for whole commands (transactions,
// calls in other databases); each command's Time is set.
func smKeyspaceCommands(t *testing.T, open func(t *testing.T) SMHarness, script []domain.Command) {
	h := open(t)
	ref := keyspace.NewMapStore()
	var e keyspace.Engine
	now := int64(1_700_000_000_000)
	for i, cmd := range script {
		args := cmd.Calls[0].Args
		cmd.Time = now + int64(i)
		index := domain.Index(i + 1)
		res, err := h.SM.Apply([]domain.Entry{{Index: index, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}})
		if err != nil {
			t.Fatalf("%s: Apply: %v", args[0], err)
		}
		want, err := e.Apply(ref, uint64(index), cmd)
		if err != nil {
			t.Fatalf("%s: reference: %v", args[0], err)
		}
		if !reflect.DeepEqual(want.Reply, res[0].Reply) { // cmp is slow on megabytes
			if d := cmp.Diff(want.Reply, res[0].Reply); len(d) < 2000 {
				t.Fatalf("entry %d %s: reply (-engine +state machine):\n%s", index, args[0], d)
			}
			t.Fatalf("entry %d %s: the reply differs from the engine's", index, args[0])
		}
		if d := diffDumps(dumpStore(t, ref), dumpReader(t, h.Reader)); d != "" {
			t.Fatalf("after entry %d %s: keyspace (-engine +state machine):\n%s", index, args[0], d)
		}
	}
	if err := h.SM.Sync(); err != nil {
		t.Fatal(err)
	}
	sm, r := h.Reopen()
	if d := diffDumps(dumpStore(t, ref), dumpReader(t, r)); d != "" {
		t.Fatalf("keyspace after a reopen (-engine +state machine):\n%s", d)
	}
	var image bytes.Buffer
	meta, err := sm.Snapshot(&image)
	if err != nil {
		t.Fatal(err)
	}
	other := open(t)
	if err := other.SM.Restore(meta, &image); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if d := diffDumps(dumpStore(t, ref), dumpReader(t, other.Reader)); d != "" {
		t.Fatalf("keyspace after snapshot and restore (-engine +restored):\n%s", d)
	}
}
