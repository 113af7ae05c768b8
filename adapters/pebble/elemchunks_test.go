package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// words turns a command line into arguments, with big values put in
// where a word is "@tag:size" (size in bytes, or "<n>c+<m>" for n chunks
// plus m bytes).
func words(line string) [][]byte {
	var args [][]byte
	for _, a := range strings.Fields(line) {
		if tag, size, ok := strings.Cut(strings.TrimPrefix(a, "@"), ":"); ok && a[0] == '@' {
			var n, m int
			if _, err := fmt.Sscanf(size, "%dc+%d", &n, &m); err != nil {
				panic(fmt.Sprintf("bad size %q", size))
			}
			args = append(args, bigValue(tag, n*chunkSize+m))
			continue
		}
		args = append(args, []byte(a))
	}
	return args
}

// elemDump is every element of databases 0 and 1 by "db/key/sub-key".
type elemDump map[string]string

func elemID(db int, key, sub []byte) string { return fmt.Sprintf("%d/%s/%x", db, key, sub) }

// refElems is the reference's elements, and the chunks Pebble needs for
// them.
func (w *twin) refElems() (elemDump, int) {
	out, chunks := elemDump{}, 0
	for db := range 2 {
		_ = w.ref.Scan(db, 0, func(key []byte, r keyspace.Record) bool {
			_ = w.ref.ElemScan(db, r.Inst, nil, false, func(sub, val []byte) bool {
				out[elemID(db, key, sub)] = string(val)
				chunks += recordChunks(append(elemPrefix(0, 0, r.Inst), sub...), len(val))
				return true
			})
			return true
		})
	}
	return out, chunks
}

// checkElems compares every element with the reference, byte for byte,
// read through ElemScan forward and backward and through ElemGet, and
// counts the element chunks stored against what the live elements need:
// none left by an overwrite, a delete or a dropped collection.
func (w *twin) checkElems(when string) {
	w.t.Helper()
	wantChunks := w.checkElemValues(when)
	if n := storedElemChunkPairs(w.t, w.kv); n != wantChunks {
		w.t.Errorf("%s: %d element chunks stored, the live elements need %d", when, n, wantChunks)
	}
	if n := storedChunks(w.t, w.kv); n != 0 {
		w.t.Errorf("%s: %d record chunks stored, no string is large", when, n)
	}
}

// checkElemValues is checkElems without the count of chunks, which it
// returns.
func (w *twin) checkElemValues(when string) int {
	w.t.Helper()
	want, wantChunks := w.refElems()
	fwd, rev, got := elemDump{}, elemDump{}, elemDump{}
	err := w.kv.View(func(st keyspace.Store) error {
		for db := range 2 {
			var colls []keyspace.Record
			var keys [][]byte
			err := st.Scan(db, 0, func(key []byte, r keyspace.Record) bool {
				if r.Inst != 0 {
					colls, keys = append(colls, r), append(keys, bytes.Clone(key))
				}
				return true
			})
			if err != nil {
				return err
			}
			for i, r := range colls {
				var subs [][]byte
				var order, revOrder []string
				err := st.ElemScan(db, r.Inst, nil, false, func(sub, val []byte) bool {
					id := elemID(db, keys[i], sub)
					fwd[id], order = string(val), append(order, id)
					subs = append(subs, bytes.Clone(sub))
					return true
				})
				if err != nil {
					return err
				}
				err = st.ElemScan(db, r.Inst, nil, true, func(sub, val []byte) bool {
					id := elemID(db, keys[i], sub)
					rev[id], revOrder = string(val), append(revOrder, id)
					return true
				})
				if err != nil {
					return err
				}
				slices.Reverse(revOrder)
				if !slices.Equal(order, revOrder) {
					w.t.Errorf("%s: %s's reverse scan is not its forward one reversed", when, keys[i])
				}
				for _, sub := range subs {
					v, ok, err := st.ElemGet(db, r.Inst, sub)
					if err != nil || !ok {
						return fmt.Errorf("ElemGet(%x): %v, %v", sub, ok, err)
					}
					got[elemID(db, keys[i], sub)] = string(v)
				}
			}
		}
		return nil
	})
	if err != nil {
		w.t.Fatalf("%s: View: %v", when, err)
	}
	for name, d := range map[string]elemDump{"ElemScan": fwd, "reverse ElemScan": rev, "ElemGet": got} {
		if n := diffKeys(want, d); n != 0 {
			w.t.Errorf("%s: %s differs from the reference in %d of %d elements", when, name, n, len(want))
		}
	}
	return wantChunks
}

// storedElemChunkPairs counts the element chunks stored under kv's
// current generation.
func storedElemChunkPairs(t *testing.T, kv *KV) int {
	return countSlotPairs(t, kv, elemSlotBit|chunkSlotBit)
}

// Element values of every size around the chunk boundary, through the
// commands that write, move and drop hash fields and list elements, read
// back byte for byte, with the element chunks each step leaves counted;
// then across a restart, a snapshot and restore, and FLUSHDB.
func TestChunkedElements(t *testing.T) {
	w := newTwin(t)
	steps := []struct{ name, line string }{
		{"small field", "HSET h f v"},
		{"small to big", "HSET h f @a:3c+7"},
		{"exactly one chunk stays inline", "HSET h one @o:1c+0"},
		{"one byte over", "HSET h two @t:1c+1"},
		{"big to smaller big", "HSET h f @b:1c+100"},
		{"big to bigger", "HSET h f @c:5c+0"},
		{"big to small", "HSET h f tiny"},
		{"small to big again", "HSET h f @d:2c+3"},
		{"hsetnx keeps the big one", "HSETNX h two x"},
		{"several in one command", "HSET h g @g:2c+1 k small two @u:1c+9"},
		{"hdel a big one", "HDEL h two"},
		{"hget", "HGET h g"},
		{"hmget", "HMGET h g f k missing"},
		{"hgetall", "HGETALL h"},
		{"hvals", "HVALS h"},
		{"hstrlen", "HSTRLEN h g"},
		{"hlen", "HLEN h"},
		{"hscan", "HSCAN h 0"},
		{"long field stays inline", "HSET h " + strings.Repeat("F", maxChunkedKey+1) + " @j:1c+1"},
		{"rpush", "RPUSH l @l1:2c+0 small @l2:1c+1"},
		{"lpush", "LPUSH l @l0:1c+5"},
		{"lset small to big", "LSET l 2 @ls:3c+0"},
		{"lset big to small", "LSET l 1 x"},
		{"lrange", "LRANGE l 0 -1"},
		{"lindex", "LINDEX l 3"},
		{"llen", "LLEN l"},
		{"lrem", "LREM l 0 x"},
		{"lpos", "LPOS l small"},
		{"lpop a big one", "LPOP l"},
		{"rpush more", "RPUSH l @r1:1c+2 @r2:2c+2 tail"},
		{"rpop", "RPOP l"},
		{"lmove a big one", "LMOVE l l2 LEFT RIGHT"},
		{"ltrim drops big ones", "LTRIM l 1 1"},
		{"set member stays a key", "SADD s @sm:1c+1 m"},
		{"sorted set member stays a key", "ZADD z 1 @zm:1c+1 2 m"},
		{"del a small hash (point deletes)", "DEL h"},
		{"hash again", "HSET h a @ha:1c+1 b @hb:2c+0"},
		{"big list", "RPUSH big 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 @bl:2c+1 @bm:1c+1"},
		{"del a big list (range deletion)", "DEL big"},
		{"copy", "COPY h h2"},
		{"rename", "RENAME h2 h3"},
		{"move to db 1", "MOVE h3 1"},
		{"type change: string over a hash", "SET h str"},
		{"swapdb", "SWAPDB 0 1"},
		{"swap back", "SWAPDB 0 1"},
		{"expiring hash", "HSET e f @e:2c+0 g small"},
		{"pexpire", "PEXPIRE e 1"},
		{"expired hash replaced on write", "HSET e x y"},
		{"expiring list", "RPUSH r @rr:3c+0"},
		{"pexpire list", "PEXPIRE r 1"},
	}
	for _, s := range steps {
		args := words(s.line)
		w.doArgs(args...)
		if keyspace.Lookup(args[0]).Flags&keyspace.ReadOnly != 0 {
			continue // its reply is compared; it changes nothing
		}
		w.check(s.name)
		w.checkElems(s.name)
	}
	// The leader's reap of an expired key.
	r, ok, err := w.ref.Get(0, []byte("r"))
	if err != nil || !ok {
		t.Fatalf("list r: %v %v", ok, err)
	}
	w.doArgs(words(fmt.Sprintf("%s 0 r %d", keyspace.ReapCommand, r.ExpireAt))...)
	w.check("reaped")
	w.checkElems("reaped")

	// After a restart (the chunked instances found anew): overwriting and
	// deleting still find the old values' chunks.
	w.doArgs(words("HSET e big @eb:2c+0 big2 @ec:1c+1")...)
	must(t, w.kv.Sync())
	w.n.crash()
	w.kv = w.n.db.StateMachine()
	w.check("after a restart")
	w.checkElems("after a restart")
	for _, line := range []string{"HSET e big small", "HDEL e big2", "LSET l 0 y"} {
		w.doArgs(words(line)...)
		w.checkElems("after a restart: " + line)
	}

	// A snapshot restored elsewhere reads the same, with the same chunks,
	// and writes there find them too.
	w.doArgs(words("HSET e big @ed:3c+1")...)
	var buf bytes.Buffer
	meta, err := w.kv.Snapshot(&buf)
	must(t, err)
	dst := newMemNode(t)
	_, err = dst.db.StateMachine().Apply([]domain.Entry{hsetEntry(1, "gone", 3)})
	must(t, err)
	must(t, dst.db.StateMachine().Restore(meta, &buf))
	restored := &twin{t: t, n: dst, kv: dst.db.StateMachine(), ref: w.ref, next: w.next}
	restored.check("restored")
	restored.checkElems("restored")
	restored.doArgs(words("HSET e big small")...)
	restored.checkElems("restored, then overwritten")

	w.doArgs(words("FLUSHDB")...)
	w.check("after FLUSHDB")
	w.checkElems("after FLUSHDB")
	w.doArgs(words("FLUSHALL")...)
	w.check("after FLUSHALL")
	w.checkElems("after FLUSHALL")
	if n := storedElemChunkPairs(t, w.kv); n != 0 {
		t.Fatalf("%d element chunks left after FLUSHALL", n)
	}
}

// An unsynced large HSET lost in a crash leaves neither its head nor any
// chunk; a synced one reads back whole.
func TestChunkedElementCrash(t *testing.T) {
	w := newTwin(t)
	w.doArgs(words("HSET h kept @k:2c+1")...)
	must(t, w.kv.Sync())
	want, wantChunks := w.refElems()
	w.doArgs(words("HSET h lost @l:3c+0 kept small")...)
	w.n.crash()
	w.kv = w.n.db.StateMachine()
	err := w.kv.View(func(st keyspace.Store) error {
		r, _, err := st.Get(0, []byte("h"))
		if err != nil {
			return err
		}
		v, ok, err := st.ElemGet(0, r.Inst, []byte("kept"))
		if err != nil || !ok || string(v) != want[elemID(0, []byte("h"), []byte("kept"))] {
			return fmt.Errorf("kept: %d bytes, %v, %v", len(v), ok, err)
		}
		return nil
	})
	must(t, err)
	if n := storedElemChunkPairs(t, w.kv); n != wantChunks {
		t.Fatalf("%d element chunks after the crash, want %d", n, wantChunks)
	}
}

// elemStoredKey is the stored key of element sub of the collection at key
// in database 0.
func elemStoredKey(t *testing.T, kv *KV, key, sub string) []byte {
	t.Helper()
	var k []byte
	err := kv.View(func(st keyspace.Store) error {
		r, ok, err := st.Get(0, []byte(key))
		if err != nil || !ok {
			return fmt.Errorf("%s: %v %v", key, ok, err)
		}
		kv.mu.RLock()
		k = append(elemPrefix(kv.mu.gen, kv.mu.dbs.slot[0], r.Inst), sub...)
		kv.mu.RUnlock()
		return nil
	})
	must(t, err)
	return k
}

// A damaged or missing chunk, or a damaged head, of a hash field's value
// is domain.ErrCorrupt naming the element (and the chunk), from
// ElemGet, ElemScan, a snapshot and an overwrite; never a wrong value.
func TestCorruptElementChunk(t *testing.T) {
	cases := []struct {
		chunkDamage
		head bool // damage the head, not chunk 1
	}{
		{chunkDamage{"head flipped", func(b *pebble.Batch, k, v []byte) {
			v = bytes.Clone(v)
			v[len(v)-1] ^= 1
			_ = b.Set(k, v, nil)
		}, "checksum mismatch"}, true},
		{chunkDamage{"head of another length", func(b *pebble.Batch, k, _ []byte) {
			// A well-sealed head announcing a length that is not a
			// chunked value's.
			p := binary.AppendUvarint(nil, 5)
			crc := crc32.Update(crc32.Checksum(k, castagnoli), castagnoli, p) ^ elemChunkMark
			_ = b.Set(k, append(binary.LittleEndian.AppendUint32(nil, crc), p...), nil)
		}, "bad chunked head"}, true},
	}
	for _, d := range chunkDamages {
		cases = append(cases, struct {
			chunkDamage
			head bool
		}{d, false})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newMemNode(t)
			kv := n.db.StateMachine()
			applyArgs(t, kv, 1, "HSET", "h", "f", string(bigValue("x", 3*chunkSize)), "g", "small")
			k := elemStoredKey(t, kv, "h", "f")
			target := chunkKey(nil, chunkBase(k), 1)
			if tc.head {
				target = k
			}
			damage(t, n.db, target, tc.edit)
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, domain.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `element "f" of instance`) {
					t.Fatalf("%s: %v; want ErrCorrupt naming element f and %q", what, err, tc.want)
				}
			}
			inst := binary.BigEndian.Uint64(k[13:elemPrefixLen])
			check("ElemGet", kv.View(func(st keyspace.Store) error {
				_, _, err := st.ElemGet(0, inst, []byte("f"))
				return err
			}))
			check("ElemScan", kv.View(func(st keyspace.Store) error {
				return st.ElemScan(0, inst, nil, false, func(_, _ []byte) bool { return true })
			}))
			_, err := kv.Snapshot(&bytes.Buffer{})
			check("Snapshot", err)
			cmd := domain.Command{Time: twinEpoch, Calls: []domain.Call{{Args: words("HSET h f small")}}}
			_, err = kv.Apply([]domain.Entry{{Index: 2, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}})
			check("HSET over it", err)
		})
	}
}

// Elements stored whole before chunks existed, of any size, are still
// read, overwritten and deleted, and leave no chunk.
func TestInlineLargeElementStaysReadable(t *testing.T) {
	w := newTwin(t)
	w.doArgs(words("HSET h old x small y")...)
	k := elemStoredKey(t, w.kv, "h", "old")
	v := bigValue("inline", 2*chunkSize+3)
	b := w.n.db.db.NewBatch()
	_ = b.Set(k, seal(k, v), nil)
	must(t, w.n.db.commit(b, false))
	// The reference as the stored state is now.
	r, _, _ := w.ref.Get(0, []byte("h"))
	must(t, w.ref.ElemPut(0, r.Inst, []byte("old"), v))
	w.checkElemValues("whole value written")
	if n := storedElemChunkPairs(t, w.kv); n != 0 {
		t.Fatalf("%d element chunks stored for a value stored whole", n)
	}
	w.doArgs(words("HGET h old")...)
	w.doArgs(words("HSET h old @new:3c+0")...)
	w.checkElems("overwritten with a chunked value")
	w.doArgs(words("HDEL h old")...)
	w.checkElems("deleted")
}

// A flush after a large HSET or RPUSH handles one chunk at a time: what
// it allocates stays far below the value's size, where a value stored
// whole (as before chunks) costs the flush several times its size; and
// the flushed tables hold no pair above a chunk.
func TestChunkedElementFlush(t *testing.T) {
	const size = 24 << 20
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, kv *KV, value []byte)
		whole bool
	}{
		{"HSET", func(t *testing.T, kv *KV, value []byte) { applyArgs(t, kv, 2, "HSET", "h", "g", string(value)) }, false},
		{"RPUSH", func(t *testing.T, kv *KV, value []byte) { applyArgs(t, kv, 2, "RPUSH", "l", string(value)) }, false},
		{"whole, as before chunks", func(t *testing.T, kv *KV, value []byte) {
			k := elemStoredKey(t, kv, "h", "g")
			b := kv.d.db.NewBatch()
			_ = b.Set(k, seal(k, value), nil)
			must(t, kv.d.commit(b, false))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A memtable that takes the value, so that it is flushed from
			// there, not as a flushable batch of its own.
			d, err := Open(Options{Dir: t.TempDir(), NoSync: true, MemTableSize: 128 << 20})
			must(t, err)
			defer d.Close()
			kv := d.StateMachine()
			applyArgs(t, kv, 1, "HSET", "h", "f", "v")
			tc.write(t, kv, bigValue("x", size))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			must(t, d.db.Flush())
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s of %d MiB: the flush allocated %d MiB", tc.name, size>>20, alloc>>20)
			if tc.whole {
				if alloc < size {
					t.Fatalf("a whole value's flush allocated %d MiB, less than the value: the measure is blind", alloc>>20)
				}
				return
			}
			// Chunked, the flush allocated 4 or 7 MiB here, run to run
			// (Pebble's own buffers: size/4 failed one run in five);
			// whole, 84 MiB.
			if alloc > size/2 {
				t.Fatalf("the flush allocated %d MiB for a value of %d MiB", alloc>>20, size>>20)
			}
			it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: dataLower, UpperBound: dataUpper})
			must(t, err)
			defer it.Close()
			largest, chunks := 0, 0
			for ok := it.First(); ok; ok = it.Next() {
				largest = max(largest, len(it.Value()))
				if binary.BigEndian.Uint32(it.Key()[9:13])&(elemSlotBit|chunkSlotBit) == elemSlotBit|chunkSlotBit {
					chunks++
				}
			}
			if largest > 4+chunkSize || chunks != chunkCount(size) {
				t.Fatalf("largest stored pair %d bytes, %d element chunks; want at most %d and %d", largest, chunks, 4+chunkSize, chunkCount(size))
			}
		})
	}
}

// applyArgs applies one command at index i to kv.
func applyArgs(t *testing.T, kv *KV, i domain.Index, args ...string) {
	t.Helper()
	call := domain.Call{}
	for _, a := range args {
		call.Args = append(call.Args, []byte(a))
	}
	cmd := domain.Command{Time: twinEpoch, Calls: []domain.Call{call}}
	_, err := kv.Apply([]domain.Entry{{Index: i, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}})
	must(t, err)
}
