package keyspace

import (
	"strings"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// getCounter is a MapStore that counts the bytes of values Get hands out.
type getCounter struct {
	*MapStore
	bytes int
}

func (g *getCounter) Get(db int, key []byte) (Record, bool, error) {
	r, ok, err := g.MapStore.Get(db, key)
	g.bytes += len(r.Value)
	return r, ok, err
}

// Commands that need a string's length or a few of its bytes, or none of
// it, never read the whole value (Get): through Stat and ReadAt a store
// that keeps a large value in parts reads only those. Each command runs
// on a key holding a value of 1 MB and may read at most a few bytes.
func TestCommandsReadNoWholeValue(t *testing.T) {
	cmds := [][]string{
		{"APPEND", "k", "tail"},
		{"SETRANGE", "k", "10", "xy"},
		{"SETRANGE", "k", "2000000", "past the end"},
		{"SETBIT", "k", "7", "1"},
		{"GETBIT", "k", "7"},
		{"GETRANGE", "k", "5", "9"},
		{"STRLEN", "k"},
		{"EXPIRE", "k", "100"},
		{"TTL", "k"},
		{"PERSIST", "k"},
		{"TYPE", "k"},
		{"EXISTS", "k"},
		{"SET", "k", "new", "XX"},
		{"SET", "j", "v"},
		{"KEYS", "*"},
		{"SCAN", "0"},
		{"RANDOMKEY"},
		{"HSET", "k", "f", "v"},
		{"SETNX", "k", "v"},
		{"DEL", "k"},
	}
	var e Engine
	for i, args := range cmds {
		st := &getCounter{MapStore: NewMapStore()}
		big := strings.Repeat("v", 1_000_000)
		if err := st.MapStore.Put(0, []byte("k"), Record{Value: []byte(big), Version: 1}); err != nil {
			t.Fatal(err)
		}
		call := domain.Call{}
		for _, a := range args {
			call.Args = append(call.Args, []byte(a))
		}
		var err error
		if Lookup(call.Args[0]).Flags&Write == 0 {
			_, err = e.Read(st, 1_700_000_000_000, call)
		} else {
			_, err = e.Apply(st, uint64(i+2), domain.Command{Time: 1_700_000_000_000, Calls: []domain.Call{call}})
		}
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if st.bytes > 100 {
			t.Errorf("%q read %d bytes of values through Get", args, st.bytes)
		}
	}
}
