package pebble

import (
	"fmt"
	"testing"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// hsetEntry is an entry whose command sets n fields of hash key.
func hsetEntry(i domain.Index, key string, n int) domain.Entry {
	call := domain.Call{Args: [][]byte{[]byte("HSET"), []byte(key)}}
	for f := range n {
		call.Args = append(call.Args, fmt.Appendf(nil, "f%d", f), []byte("v"))
	}
	cmd := domain.Command{Time: 1_700_000_000_000, Calls: []domain.Call{call}}
	return domain.Entry{Index: i, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}
}

// Deleting a big collection writes a constant number of operations: its
// elements go in one range deletion, not one deletion each.
func TestDropElemsIsConstantWork(t *testing.T) {
	n := newMemNode(t)
	kv := n.db.StateMachine()
	if _, err := kv.Apply([]domain.Entry{hsetEntry(1, "big", 5000), hsetEntry(2, "small", 3)}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"big", "small"} {
		kv.mu.Lock()
		b := kv.d.db.NewIndexedBatch()
		dbs := *kv.mu.dbs
		st := &batchStore{kv: kv, r: b, w: b, gen: kv.mu.gen, dbs: &dbs}
		r, ok, err := st.Get(0, []byte(key))
		if err != nil || !ok {
			t.Fatalf("Get(%s): %v %v", key, ok, err)
		}
		if err := st.DropElems(0, r.Inst, r.Count); err != nil {
			t.Fatal(err)
		}
		ops := b.Count()
		left := 0
		if err := st.ElemScan(0, r.Inst, nil, false, func(_, _ []byte) bool { left++; return true }); err != nil {
			t.Fatal(err)
		}
		b.Close()
		kv.mu.Unlock()
		if left != 0 {
			t.Errorf("%s: %d elements left after DropElems", key, left)
		}
		want := uint32(r.Count) // one point deletion each
		if r.Count > elemPointDeletes {
			want = 2 // one range deletion of the elements, one of their chunks
		}
		if ops != want {
			t.Errorf("%s (%d elements): %d batch operations, want %d", key, r.Count, ops, want)
		}
	}
}

// BenchmarkHSetFields applies HSET entries of 1000 new fields each to one
// growing hash: the cost per field as the hash grows. The RPUSH
// sub-benchmark does the same with list elements, which the engine writes
// without reading them first (so the store reads the old value's head).
func BenchmarkHSetFields(b *testing.B) {
	for _, cmd := range []string{"HSET", "RPUSH"} {
		b.Run(cmd, func(b *testing.B) {
			kv := benchDB(b, Options{}).StateMachine()
			b.ReportAllocs()
			for i := range b.N {
				call := domain.Call{Args: [][]byte{[]byte(cmd), []byte("h")}}
				for f := range 1000 {
					call.Args = append(call.Args, fmt.Appendf(nil, "f%d-%d", i, f))
					if cmd == "HSET" {
						call.Args = append(call.Args, []byte("v"))
					}
				}
				c := domain.Command{Time: 1_700_000_000_000, Calls: []domain.Call{call}}
				e := domain.Entry{Index: domain.Index(i + 1), Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(c)}
				if _, err := kv.Apply([]domain.Entry{e}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/field")
		})
	}
}

// BenchmarkBigCollection builds a hash and a sorted set of 1M elements
// each on Pebble's state machine, then measures one entry's apply on
// them: HSET of one field, ZADD of one member, ZRANGE of 10 by rank and
// by score (reads through View), and DEL of the whole hash (constant
// work: one range deletion).
func BenchmarkBigCollection(b *testing.B) {
	const size = 1_000_000
	kv := benchDB(b, Options{}).StateMachine()
	index := domain.Index(0)
	apply := func(args ...string) domain.Result {
		index++
		call := domain.Call{}
		for _, a := range args {
			call.Args = append(call.Args, []byte(a))
		}
		cmd := domain.Command{Time: 1_700_000_000_000, Calls: []domain.Call{call}}
		res, err := kv.Apply([]domain.Entry{{Index: index, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}})
		if err != nil {
			b.Fatal(err)
		}
		return res[0]
	}
	for i := 0; i < size; i += 1000 {
		h := []string{"HSET", "h"}
		z := []string{"ZADD", "z"}
		for j := i; j < i+1000; j++ {
			h = append(h, fmt.Sprintf("f%d", j), "v")
			z = append(z, fmt.Sprint(j), fmt.Sprintf("m%d", j))
		}
		apply(h...)
		apply(z...)
	}
	var e keyspace.Engine
	read := func(args ...string) domain.Reply {
		call := domain.Call{}
		for _, a := range args {
			call.Args = append(call.Args, []byte(a))
		}
		var r domain.Reply
		err := kv.View(func(st keyspace.Store) (err error) {
			r, err = e.Read(st, 1_700_000_000_000, call)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	b.Run("HSET", func(b *testing.B) {
		for i := range b.N {
			apply("HSET", "h", fmt.Sprintf("new%d", i), "v")
		}
	})
	b.Run("ZADD", func(b *testing.B) {
		for i := range b.N {
			apply("ZADD", "z", fmt.Sprint(i%size), fmt.Sprintf("new%d", i))
		}
	})
	b.Run("ZRANGE-rank-middle", func(b *testing.B) {
		for range b.N {
			read("ZRANGE", "z", "500000", "500009")
		}
	})
	b.Run("ZRANGEBYSCORE-middle", func(b *testing.B) {
		for range b.N {
			if r := read("ZRANGEBYSCORE", "z", "500000", "+inf", "LIMIT", "0", "10"); len(r.Array) != 10 {
				b.Fatalf("got %v", r)
			}
		}
	})
	b.Run("DEL", func(b *testing.B) {
		for range b.N {
			if r := apply("DEL", "h"); b.N == 1 && r.Reply.Int != 1 {
				b.Fatalf("DEL = %v", r.Reply)
			}
		}
	})
}
