package pebble

import (
	"fmt"
	"testing"

	"github.com/seshat-kv/seshat/domain"
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
		st := &batchStore{kv: kv, r: b, w: b, gen: kv.mu.gen, dbs: kv.mu.dbs}
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
			want = 1 // one range deletion
		}
		if ops != want {
			t.Errorf("%s (%d elements): %d batch operations, want %d", key, r.Count, ops, want)
		}
	}
}

// BenchmarkHSetFields applies HSET entries of 1000 new fields each to one
// growing hash: the cost per field as the hash grows.
func BenchmarkHSetFields(b *testing.B) {
	kv := benchDB(b, Options{}).StateMachine()
	b.ReportAllocs()
	for i := range b.N {
		call := domain.Call{Args: [][]byte{[]byte("HSET"), []byte("h")}}
		for f := range 1000 {
			call.Args = append(call.Args, fmt.Appendf(nil, "f%d-%d", i, f), []byte("v"))
		}
		cmd := domain.Command{Time: 1_700_000_000_000, Calls: []domain.Call{call}}
		e := domain.Entry{Index: domain.Index(i + 1), Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}
		if _, err := kv.Apply([]domain.Entry{e}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/field")
}
