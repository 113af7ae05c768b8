package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// doCalls applies several commands in one entry, as one transaction (as
// EXEC does), to both sides of the twin and checks that they answer the
// same.
func (w *twin) doCalls(calls ...[][]byte) {
	w.t.Helper()
	cmd := domain.Command{Time: twinEpoch + int64(w.next), Tx: len(calls) > 1}
	for _, c := range calls {
		cmd.Calls = append(cmd.Calls, domain.Call{Args: c})
	}
	e := domain.Entry{Index: w.next, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}
	got, err := w.kv.Apply([]domain.Entry{e})
	if err != nil {
		w.t.Fatalf("%s...: Apply: %v", calls[0][0], err)
	}
	want, err := w.eng.Apply(w.ref, uint64(w.next), cmd)
	if err != nil {
		w.t.Fatalf("%s...: reference Apply: %v", calls[0][0], err)
	}
	w.next++
	// reflect first: cmp compares large values byte by byte, slowly.
	if reflect.DeepEqual(want.Reply, got[0].Reply) {
		return
	}
	if diff := cmp.Diff(want.Reply, got[0].Reply); diff != "" {
		w.t.Errorf("%s...: reply differs from the reference (-want +got):\n%.2000s", calls[0][0], diff)
	}
}

func argv(words ...any) [][]byte {
	out := make([][]byte, len(words))
	for i, w := range words {
		switch w := w.(type) {
		case []byte:
			out[i] = w
		case int:
			out[i] = []byte(strconv.Itoa(w))
		default:
			out[i] = []byte(fmt.Sprint(w))
		}
	}
	return out
}

// Commands that read or change part of a chunked value answer and leave
// what the reference store does, byte for byte, at every place around
// the chunk boundaries; the chunks stored are what the values need.
func TestValuePartsMatchReference(t *testing.T) {
	const c = chunkSize
	steps := []struct {
		name  string
		calls [][][]byte
	}{
		{"a chunked value", [][][]byte{argv("SET", "k", bigValue("a", 3*c+7))}},
		{"append a few bytes", [][][]byte{argv("APPEND", "k", "tail")}},
		{"append up to a chunk boundary", [][][]byte{argv("APPEND", "k", bigValue("b", c-11))}},
		{"append past a boundary, across chunks", [][][]byte{argv("APPEND", "k", bigValue("c", 2*c+5))}},
		{"setrange inside a chunk", [][][]byte{argv("SETRANGE", "k", 10, "xy")}},
		{"setrange across a boundary", [][][]byte{argv("SETRANGE", "k", c-3, "across")}},
		{"setrange over whole chunks", [][][]byte{argv("SETRANGE", "k", c/2, bigValue("d", 2*c))}},
		{"setrange at the end", [][][]byte{argv("SETRANGE", "k", 6*c-2, "grows")}},
		{"setrange far past the end", [][][]byte{argv("SETRANGE", "k", 9*c+1, "gap")}},
		{"setbit inside", [][][]byte{argv("SETBIT", "k", 8*(2*c+1)+3, 1)}},
		{"setbit that changes nothing", [][][]byte{argv("SETBIT", "k", 8*(2*c+1)+3, 1)}},
		{"setbit past the end", [][][]byte{argv("SETBIT", "k", 8*(11*c)+1, 1)}},
		{"reads", [][][]byte{
			argv("GETRANGE", "k", c-5, c+5), argv("GETRANGE", "k", -20, -1),
			argv("GETRANGE", "k", 0, 3), argv("GETRANGE", "k", 5*c, 4*c),
			argv("GETBIT", "k", 8*(2*c+1)+3), argv("GETBIT", "k", 8*(20*c)),
			argv("STRLEN", "k"), argv("SUBSTR", "k", 3*c, 3*c+100),
		}},
		{"expire and persist keep the value", [][][]byte{argv("EXPIRE", "k", 1000), argv("TTL", "k")}},
		{"persist", [][][]byte{argv("PERSIST", "k"), argv("TTL", "k")}},
		{"append keeps the deadline", [][][]byte{argv("PEXPIRE", "k", 100000), argv("APPEND", "k", "x"), argv("PTTL", "k")}},
		{"one entry: set, change, read, change", [][][]byte{
			argv("SET", "m", bigValue("e", 2*c+1)), argv("APPEND", "m", "1"),
			argv("GETRANGE", "m", 2*c-1, 2*c+1), argv("SETRANGE", "m", 1, "2"),
			argv("SETBIT", "m", 8*(c+1), 1), argv("GET", "m"), argv("APPEND", "m", bigValue("f", c)),
			argv("STRLEN", "m"),
		}},
		{"small value grows into chunks", [][][]byte{argv("SET", "s", "small"), argv("APPEND", "s", bigValue("g", c))}},
		{"setrange creates a chunked value", [][][]byte{argv("SETRANGE", "new", c+3, "x")}},
		{"setbit creates a chunked value", [][][]byte{argv("SETBIT", "bits", 8*(c+9), 0)}},
		{"a set over a changed value", [][][]byte{argv("SET", "m", bigValue("h", c+1))}},
		{"wrong type", [][][]byte{argv("HSET", "h", "f", "v"), argv("APPEND", "h", "x"), argv("SETRANGE", "h", 0, "x"), argv("GETRANGE", "h", 0, 1)}},
		{"del", [][][]byte{argv("DEL", "s")}},
	}
	w := newTwin(t)
	for _, s := range steps {
		w.doCalls(s.calls...)
		w.check(s.name)
		w.checkValues(s.name)
	}
	must(t, w.kv.Sync())
	w.n.crash()
	w.kv = w.n.db.StateMachine()
	w.checkValues("after a restart")
	w.doCalls(argv("APPEND", "k", "after"), argv("SETRANGE", "k", 5, "restart"))
	w.checkValues("changed after a restart")
}

// walBytes is how many bytes kv's DB has written to its WAL so far.
// bytesIn is how many bytes Pebble took in: through the WAL, and in
// ingested tables (see ingestBytes).
func bytesIn(kv *KV) uint64 {
	return kv.d.db.Metrics().WAL.BytesIn + kv.d.ingested.Load()
}

// A command that changes a few bytes of a chunked value, or its deadline,
// writes the chunks it changes and not the whole value: measured in the
// bytes the apply writes to the WAL, against a value of 16 chunks.
func TestValuePartsWriteOnlyWhatChanges(t *testing.T) {
	const c = chunkSize
	w := newTwin(t)
	w.doCalls(argv("SET", "k", bigValue("v", 16*c+100)))
	cases := []struct {
		cmd  [][]byte
		most int // bytes
	}{
		{argv("APPEND", "k", "tail"), c + 4096},
		{argv("APPEND", "k", bigValue("w", 2*c)), 3*c + 4096},
		{argv("SETRANGE", "k", 5*c-1, "ab"), 2*c + 4096},
		{argv("SETBIT", "k", 8*(9*c), 1), c + 4096},
		{argv("EXPIRE", "k", 100), 4096},
		{argv("PERSIST", "k"), 4096},
		{argv("GETRANGE", "k", 0, 10), 4096},
	}
	for _, tc := range cases {
		before := bytesIn(w.kv)
		w.doCalls(tc.cmd)
		if got := bytesIn(w.kv) - before; got > uint64(tc.most) {
			t.Errorf("%s: wrote %d bytes to the WAL, want at most %d (the value is %d)", tc.cmd[0], got, tc.most, 18*c)
		}
	}
	w.checkValues("after the changes")
}

// putOldChunked stores v at key the way stores before stop 21 did
// (recordChunked: the chunks' CRCs start from the head's).
func putOldChunked(t *testing.T, n *memNode, kv *KV, key string, r keyspace.Record) {
	t.Helper()
	k := dataKey(kv.mu.gen, 0, []byte(key))
	b := n.db.db.NewBatch()
	p := append([]byte{recordChunked}, binary.AppendUvarint(nil, uint64(len(r.Value)))...)
	v := r.Value
	r.Value = nil
	head := seal(k, keyspace.AppendRecord(p, r))
	must(t, b.Set(k, head, nil))
	_, err := putChunks(b, chunkBase(k), chunkSeed(binary.LittleEndian.Uint32(head)), v)
	must(t, err)
	must(t, n.db.commit(b, false))
	kv.cache.clear()
}

// A chunked value stored before stop 21 is read as before; its first
// change writes it whole in the patchable form, and the next ones write
// only what they change.
func TestOldChunkedFormat(t *testing.T) {
	const c = chunkSize
	w := newTwin(t)
	w.doCalls(argv("SET", "k", "placeholder")) // the key counted on both sides
	v := bigValue("old", 4*c+1)
	putOldChunked(t, w.n, w.kv, "k", keyspace.Record{Value: v, Version: 1})
	must(t, w.ref.Put(0, []byte("k"), keyspace.Record{Value: v, Version: 1}))
	w.checkValues("old format")
	w.doCalls(argv("GETRANGE", "k", c-2, c+2), argv("STRLEN", "k"))
	before := bytesIn(w.kv)
	w.doCalls(argv("APPEND", "k", "x"))
	if got := bytesIn(w.kv) - before; got < uint64(len(v)) {
		t.Errorf("first change of an old value wrote %d bytes, want it whole (%d)", got, len(v))
	}
	before = bytesIn(w.kv)
	w.doCalls(argv("APPEND", "k", "y"))
	if got := bytesIn(w.kv) - before; got > c+4096 {
		t.Errorf("second change wrote %d bytes, want one chunk", got)
	}
	w.checkValues("rewritten")
}

// Unsynced changes of part of a value lost in a crash leave the synced
// value whole: the head and the chunks it names go together.
func TestValuePartsCrash(t *testing.T) {
	const c = chunkSize
	n := newMemNode(t)
	kv := n.db.StateMachine()
	v := bigValue("synced", 3*c+1)
	_, err := kv.Apply([]domain.Entry{cmdEntry(1, 1, set("a", string(v)))})
	must(t, err)
	must(t, kv.Sync())
	for i, args := range [][][]byte{
		argv("APPEND", "a", bigValue("lost", c)),
		argv("SETRANGE", "a", c-1, "lost"),
		argv("SETBIT", "a", 8*(3*c), 1),
	} {
		cmd := domain.Command{Time: twinEpoch, Calls: []domain.Call{{Args: args}}}
		_, err := kv.Apply([]domain.Entry{{Index: domain.Index(2 + i), Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}})
		must(t, err)
	}
	n.crash()
	kv = n.db.StateMachine()
	wantGet(t, kv, "a", string(v))
	if got, want := storedChunks(t, kv), chunkCount(len(v)); got != want {
		t.Fatalf("%d chunks stored after the crash, want %d", got, want)
	}
}

// A damaged chunk read by part (GETRANGE's ReadAt) or kept by a change
// (APPEND's last chunk) is domain.ErrCorrupt naming the key and the
// chunk, never a wrong value; an undamaged part still reads.
func TestValuePartsCorruptChunk(t *testing.T) {
	const c = chunkSize
	for _, tc := range chunkDamages {
		t.Run(tc.name, func(t *testing.T) {
			n := newMemNode(t)
			kv := n.db.StateMachine()
			_, err := kv.Apply([]domain.Entry{cmdEntry(1, 1, set("key", string(bigValue("x", 2*c+5))))})
			must(t, err)
			k := dataKey(kv.mu.gen, 0, []byte("key"))
			damage(t, n.db, chunkKey(nil, chunkBase(k), 1), tc.edit)
			kv.cache.clear()
			err = kv.View(func(st keyspace.Store) error {
				if err := st.ReadAt(0, []byte("key"), 10, make([]byte, 10)); err != nil {
					t.Errorf("ReadAt of chunk 0: %v", err)
				}
				return st.ReadAt(0, []byte("key"), c+10, make([]byte, 10))
			})
			wantCorrupt(t, "ReadAt", err, tc.want)
			// Chunk 1 is the last full one: an APPEND that grows the
			// value into chunk 2 keeps chunk 2 only, a SETRANGE into
			// chunk 1 keeps chunk 1's other bytes.
			cmd := domain.Command{Time: twinEpoch, Calls: []domain.Call{{Args: argv("SETRANGE", "key", c+1, "z")}}}
			_, err = kv.Apply([]domain.Entry{{Index: 2, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}})
			wantCorrupt(t, "SETRANGE", err, tc.want)
		})
	}
}

func wantCorrupt(t *testing.T, what string, err error, want string) {
	t.Helper()
	if !errors.Is(err, domain.ErrCorrupt) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "key") {
		t.Fatalf("%s: %v; want ErrCorrupt naming the key and %q", what, err, want)
	}
}

// A chunk sealed for another value of the same key (another id) fails.
func TestChunkOfAnotherIDFails(t *testing.T) {
	k := chunkKey(nil, chunkBase(dataKey(1, 0, []byte("k"))), 0)
	data := []byte("some bytes")
	crc := crc32.Update(crc32.Update(idSeed(7), castagnoli, k), castagnoli, data)
	rec := binary.LittleEndian.AppendUint32(nil, crc)
	rec = append(rec, data...)
	if _, good := checkChunk(k, rec, idSeed(7), 0, len(data)); !good {
		t.Fatal("a chunk fails under its own id")
	}
	if _, good := checkChunk(k, rec, idSeed(8), 0, len(data)); good {
		t.Fatal("a chunk of id 7 passes under id 8")
	}
}

// Random changes of part of chunked values, at offsets near chunk
// boundaries, several to an entry, against the reference store: every
// reply and, after each entry, every value byte for byte and the chunks
// stored. The seed is in the test's name, to rerun one with -run.
func TestValuePartsRandom(t *testing.T) {
	const c = chunkSize
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 21))
			// An offset a few bytes from a chunk boundary, or anywhere.
			near := func(limit int) int {
				if rng.IntN(4) == 0 {
					return rng.IntN(limit)
				}
				return max(0, min(limit-1, rng.IntN(limit/c+1)*c+rng.IntN(7)-3))
			}
			keys := []string{"a", "b", "c"}
			w := newTwin(t)
			for _, k := range keys {
				w.doCalls(argv("SET", k, bigValue(k, c+rng.IntN(2*c))))
			}
			for step := range 25 {
				var calls [][][]byte
				for range 1 + rng.IntN(3) {
					k := keys[rng.IntN(len(keys))]
					switch rng.IntN(9) {
					case 0:
						calls = append(calls, argv("APPEND", k, bigValue(fmt.Sprint(step), rng.IntN(c+9))))
					case 1:
						calls = append(calls, argv("SETRANGE", k, near(5*c), bigValue("r", 1+rng.IntN(c+9))))
					case 2:
						calls = append(calls, argv("SETBIT", k, 8*near(5*c)+rng.IntN(8), rng.IntN(2)))
					case 3:
						calls = append(calls, argv("GETRANGE", k, near(5*c), near(5*c)))
					case 4:
						calls = append(calls, argv("PEXPIRE", k, 1000000+rng.IntN(1000)))
					case 5:
						calls = append(calls, argv("STRLEN", k))
					case 6:
						// Deferred into an ingested table (see deferredValue).
						calls = append(calls, argv("SET", k, bigValue(fmt.Sprint("i", step), ingestBytes+rng.IntN(2*c))))
					case 7:
						calls = append(calls, argv("DEL", k))
					default:
						calls = append(calls, argv("SET", k, bigValue(fmt.Sprint("s", step), rng.IntN(3*c))))
					}
				}
				w.doCalls(calls...)
				w.checkValues(fmt.Sprintf("seed %d step %d", seed, step))
				if t.Failed() {
					t.Fatalf("seed %d: failed at step %d: %q...", seed, step, calls[0][0])
				}
			}
		})
	}
}
