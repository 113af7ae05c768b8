package pebble

import (
	"fmt"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// TestLongViewDoesNotBlockApply holds a View open, once after a scan,
// once after more point reads than a View makes under the lock and once
// after reading a chunked value (hundreds of MB can take seconds), while
// entries apply (a FLUSHDB among them, which moves database 0 to another
// slot): the Apply must finish meanwhile, and the View must go on seeing
// the one point it started at, before and after the Apply.
func TestLongViewDoesNotBlockApply(t *testing.T) {
	for _, c := range []struct {
		name string
		long func(t *testing.T, st keyspace.Store)
	}{
		{"scan", func(t *testing.T, st keyspace.Store) {
			n := 0
			if err := st.Scan(0, 0, func([]byte, keyspace.Record) bool { n++; return true }); err != nil || n != 3 {
				t.Errorf("scan: %d keys, %v; want 3", n, err)
			}
		}},
		// Larger than the record cache keeps (a tenth of its budget).
		{"chunked value", func(t *testing.T, st keyspace.Store) {
			if r, ok, err := st.Get(0, []byte("big")); !ok || err != nil || string(r.Value) != string(bigValue("v", 4*chunkSize+1)) {
				t.Errorf("big: %d bytes, %v, %v", len(r.Value), ok, err)
			}
		}},
		{"reads", func(t *testing.T, st keyspace.Store) {
			for i := range maxLockedReads {
				if _, ok, err := st.Get(0, fmt.Appendf(nil, "absent%d", i)); ok || err != nil {
					t.Errorf("absent%d: %v, %v", i, ok, err)
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			kv := newMemNode(t).db.StateMachine()
			if _, err := kv.Apply([]domain.Entry{cmdEntry(1, 1, set("a", "1"), set("b", "2"), set("big", string(bigValue("v", 4*chunkSize+1))))}); err != nil {
				t.Fatal(err)
			}
			readValue := func(st keyspace.Store, key string) string {
				r, ok, err := st.Get(0, []byte(key))
				if err != nil {
					t.Error(err)
				}
				if !ok {
					return ""
				}
				return string(r.Value)
			}
			start, applied := make(chan struct{}), make(chan error, 1)
			go func() {
				<-start
				_, err := kv.Apply([]domain.Entry{
					cmdEntry(2, 1, set("a", "10")),
					{Index: 3, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(domain.Command{
						Time: 1_700_000_000_000, Calls: []domain.Call{{Args: [][]byte{[]byte("FLUSHDB")}}}})},
					cmdEntry(4, 1, set("b", "20")),
				})
				applied <- err
			}()
			err := kv.View(func(st keyspace.Store) error {
				if got := readValue(st, "a"); got != "1" {
					t.Errorf("in the view before the Apply: a = %q, want 1", got)
				}
				c.long(t, st)
				close(start)
				select {
				case err := <-applied:
					if err != nil {
						t.Errorf("apply: %v", err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("Apply did not finish while a View was open")
				}
				for key, want := range map[string]string{"a": "1", "b": "2"} {
					if got := readValue(st, key); got != want {
						t.Errorf("in the view after the Apply: %s = %q, want %q", key, got, want)
					}
				}
				if n, _, err := st.Len(0); err != nil || n != 3 {
					t.Errorf("in the view after the Apply: Len = %d, %v; want 3", n, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			wantGet(t, kv, "a", "")
			wantGet(t, kv, "b", "20")
		})
	}
}

// TestViewSeesOnePointUnderApplies applies entries that each set a and b
// to the same new value, while Views read a, then enough other keys to
// move to a snapshot, then b: every View must find a == b, whichever side
// of the move each read fell on.
func TestViewSeesOnePointUnderApplies(t *testing.T) {
	kv := newMemNode(t).db.StateMachine()
	const entries = 300
	done := make(chan error, 1)
	go func() {
		for i := domain.Index(1); i <= entries; i++ {
			v := fmt.Sprint(i)
			if _, err := kv.Apply([]domain.Entry{cmdEntry(i, 1, set("a", v), set("b", v))}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for views := 0; ; views++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if views == 0 {
				t.Log("the applies finished before any View ran")
			}
			return
		default:
		}
		err := kv.View(func(st keyspace.Store) error {
			a, _, err := st.Get(0, []byte("a"))
			if err != nil {
				return err
			}
			for i := range maxLockedReads + 1 {
				if _, _, err := st.Get(0, fmt.Appendf(nil, "other%d", i)); err != nil {
					return err
				}
			}
			b, _, err := st.Get(0, []byte("b"))
			if err != nil {
				return err
			}
			if string(a.Value) != string(b.Value) {
				t.Errorf("view %d: a = %q, b = %q: two points", views, a.Value, b.Value)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
