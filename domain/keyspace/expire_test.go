package keyspace

import (
	"bytes"
	"slices"
	"strconv"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// Replies checked against redis-server 7.0.15.

func TestExpireErrors(t *testing.T) {
	x := newTester(t)
	x.expect(ok, "set", "a", "1")
	for _, tc := range []struct {
		want domain.Reply
		args []string
	}{
		{errr("ERR Unsupported option foo"), []string{"expire", "a", "10", "foo"}},
		{errr("ERR Unsupported option foo"), []string{"expire", "a", "x", "foo"}}, // options first
		{errr("ERR Unsupported option foo"), []string{"expire", "a", "10", "nx", "xx", "foo"}},
		{errr("ERR Unsupported option a  b"), []string{"pexpire", "a", "10", "a\r\nb"}},
		{errr("ERR Unsupported option a"), []string{"pexpire", "a", "10", "a\n"}},
		{errr("ERR Unsupported option "), []string{"pexpire", "a", "10", "\r\n"}},
		{errr("ERR Unsupported option a"), []string{"pexpire", "a", "10", "a\x00b"}},
		{errr("ERR NX and XX, GT or LT options at the same time are not compatible"), []string{"expire", "a", "10", "nx", "xx"}},
		{errr("ERR NX and XX, GT or LT options at the same time are not compatible"), []string{"expire", "a", "10", "NX", "GT"}},
		{errr("ERR NX and XX, GT or LT options at the same time are not compatible"), []string{"expireat", "a", "10", "lt", "nx"}},
		{errr("ERR NX and XX, GT or LT options at the same time are not compatible"), []string{"expire", "a", "10", "nx", "gt", "lt"}},
		{errr("ERR GT and LT options at the same time are not compatible"), []string{"pexpireat", "a", "10", "gt", "lt"}},
		{errr("ERR GT and LT options at the same time are not compatible"), []string{"pexpire", "a", "x", "xx", "gt", "lt"}},
		{errr("ERR value is not an integer or out of range"), []string{"expire", "a", "x"}},
		{errr("ERR value is not an integer or out of range"), []string{"expire", "a", "1.5"}},
		{errr("ERR value is not an integer or out of range"), []string{"expire", "a", "9223372036854775808"}},
		{errr("ERR invalid expire time in 'expire' command"), []string{"expire", "a", "9223372036854776"}},
		{errr("ERR invalid expire time in 'expire' command"), []string{"expire", "a", "-9223372036854776"}},
		{errr("ERR invalid expire time in 'expire' command"), []string{"expire", "a", "9223372036854775"}}, // + now
		{errr("ERR invalid expire time in 'pexpire' command"), []string{"pexpire", "a", "9223372036854775807"}},
		{errr("ERR invalid expire time in 'expireat' command"), []string{"expireat", "a", "-9223372036854776"}},
		{errr("ERR invalid expire time in 'expireat' command"), []string{"expireat", "a", "9223372036854776"}},
		{errr("ERR invalid expire time in 'expire' command"), []string{"expire", "nokey", "9223372036854776"}},
		{num(0), []string{"expire", "nokey", "10"}},
		{num(0), []string{"pexpireat", "nokey", "1"}},
	} {
		x.expect(tc.want, tc.args...)
	}
	x.expect(num(-1), "ttl", "a")
}

func TestExpireFlags(t *testing.T) {
	x := newTester(t)
	x.expect(ok, "set", "a", "1")
	x.expect(num(0), "expire", "a", "10", "xx")
	x.expect(num(0), "expire", "a", "10", "gt") // no deadline is infinite
	x.expect(num(1), "expire", "a", "10", "nx")
	x.expect(num(0), "expire", "a", "20", "nx")
	x.expect(num(10), "ttl", "a")
	x.expect(num(0), "expire", "a", "10", "gt")
	x.expect(num(1), "expire", "a", "11", "GT")
	x.expect(num(0), "expire", "a", "11", "lt")
	x.expect(num(1), "expire", "a", "10", "Lt")
	x.expect(num(10), "ttl", "a")
	x.expect(num(0), "expire", "a", "5", "xx", "gt")
	x.expect(num(1), "expire", "a", "50", "xx", "gt")
	x.expect(num(0), "expire", "a", "50", "xx", "lt")
	x.expect(num(1), "expire", "a", "40", "xx")
	x.expect(num(40), "ttl", "a")
	x.expect(num(1), "persist", "a")
	x.expect(num(1), "expire", "a", "10", "lt") // LT against no deadline
	x.expect(num(1), "persist", "a")
	x.expect(num(1), "pexpire", "a", "500", "lt", "lt")
	x.expect(num(500), "pttl", "a")
	// A deadline not in the future deletes the key, even under LT.
	x.expect(num(1), "expire", "a", "-1", "lt")
	x.expect(num(0), "exists", "a")
}

func TestExpireDeletes(t *testing.T) {
	x := newTester(t)
	for _, args := range [][]string{
		{"expire", "k", "0"},
		{"expire", "k", "-5"},
		{"pexpire", "k", "0"},
		{"expireat", "k", "1"},
		{"pexpireat", "k", "1"},
		{"pexpireat", "k", strconv.FormatInt(x.now, 10)},
		{"pexpireat", "k", "-9223372036854775808"},
		{"expireat", "k", "-9223372036854775"},
	} {
		x.expect(ok, "set", "k", "v")
		x.expect(num(1), args...)
		x.expect(num(0), "exists", "k")
		if n, _, _ := x.st.Len(0); n != 0 {
			t.Errorf("%q: key left in the store", args)
		}
	}
	x.expect(ok, "set", "k", "v")
	x.expect(num(1), "pexpireat", "k", strconv.FormatInt(x.now+1, 10))
	x.expect(num(1), "exists", "k")
}

func TestTTL(t *testing.T) {
	x := newTester(t)
	x.expect(num(-2), "ttl", "k")
	x.expect(num(-2), "pttl", "k")
	x.expect(num(-2), "expiretime", "k")
	x.expect(num(-2), "pexpiretime", "k")
	x.expect(ok, "set", "k", "v")
	x.expect(num(-1), "ttl", "k")
	x.expect(num(-1), "pttl", "k")
	x.expect(num(-1), "expiretime", "k")
	x.expect(num(-1), "pexpiretime", "k")
	x.expect(num(1), "PEXPIRE", "k", "1499")
	x.expect(num(1), "ttl", "k")
	x.expect(num(1499), "pttl", "k")
	deadline := x.now + 1499
	x.expect(num(deadline), "pexpiretime", "k")
	x.expect(num((deadline+500)/1000), "expiretime", "k")
	x.expect(num(1), "pexpire", "k", "1500")
	x.expect(num(2), "ttl", "k") // (ms+500)/1000
	x.expect(num(1), "pexpire", "k", "499")
	x.expect(num(0), "ttl", "k")
	x.expect(num(1), "EXPIRE", "k", "100")
	x.expect(num(100), "ttl", "k")
	x.expect(num(100000), "pttl", "k")
	x.expect(num(x.now/1000+100), "expiretime", "k")
	x.now += 99_999
	x.expect(num(1), "pttl", "k")
	x.expect(num(0), "ttl", "k")
	x.now++
	x.expect(num(-2), "pttl", "k")
	x.expect(num(-2), "ttl", "k")

	x.expect(ok, "set", "k", "v")
	x.expect(num(1), "expireat", "k", "1800000000")
	x.expect(num(1800000000), "expiretime", "k")
	x.expect(num(1800000000000), "pexpiretime", "k")
	x.expect(num(1800000000-x.now/1000), "ttl", "k")
	x.expect(num(1), "pexpireat", "k", "1800000000123")
	x.expect(num(1800000000), "expiretime", "k")
	x.expect(num(1800000000123), "pexpiretime", "k")
	x.expect(num(1), "expireat", "k", "9223372036854775")
	x.expect(num(9223372036854775000), "pexpiretime", "k")
	x.expect(ok, "set", "k", "v") // SET clears the deadline
	x.expect(num(-1), "ttl", "k")
}

func TestPersist(t *testing.T) {
	x := newTester(t)
	x.expect(num(0), "persist", "k")
	x.expect(ok, "set", "k", "v")
	x.expect(num(0), "PERSIST", "k")
	x.expect(num(1), "expire", "k", "10")
	x.expect(num(1), "persist", "k")
	x.expect(num(-1), "ttl", "k")
	x.expect(num(0), "persist", "k")
	x.expect(bulk("v"), "get", "k")
	x.expect(num(1), "pexpire", "k", "10")
	x.now += 10
	x.expect(num(0), "persist", "k")
	x.expect(num(0), "exists", "k")
}

// TestExpireWatchVersion: EXPIRE and PERSIST change the key's version, as
// Redis's signalModifiedKey makes them touch a WATCH.
func TestExpireWatchVersion(t *testing.T) {
	x := newTester(t)
	x.expect(ok, "set", "k", "v")
	v0, _ := KeyVersion(x.st, x.now, 0, []byte("k"))
	x.expect(num(1), "expire", "k", "10")
	v1, _ := KeyVersion(x.st, x.now, 0, []byte("k"))
	x.expect(num(1), "persist", "k")
	v2, _ := KeyVersion(x.st, x.now, 0, []byte("k"))
	if v0 == v1 || v1 == v2 {
		t.Errorf("versions %d %d %d", v0, v1, v2)
	}
}

func TestReap(t *testing.T) {
	x := newTester(t)
	x.expect(ok, "set", "k", "v", "PX", "100")
	deadline := strconv.FormatInt(x.now+100, 10)
	for _, tc := range []struct {
		want domain.Reply
		args []string
	}{
		{errr("ERR value is not an integer or out of range"), []string{"seshat.reap", "x", "k", deadline}},
		{errr("ERR value is not an integer or out of range"), []string{"seshat.reap", "0", "k", "x"}},
		{errr("ERR DB index is out of range"), []string{"seshat.reap", "16", "k", deadline}},
		{errr("ERR DB index is out of range"), []string{"seshat.reap", "-1", "k", deadline}},
		// The engine's own database is reaped too (expired WATCH
		// registrations), but only what has a deadline: never the clock.
		{num(0), []string{"seshat.reap", strconv.Itoa(SystemDB), "clock", "0"}},
		{errr("ERR wrong number of arguments for 'seshat.reap' command"), []string{"seshat.reap", "0", "k"}},
		{num(0), []string{"seshat.reap", "0", "k", deadline}}, // not yet
		{num(0), []string{"seshat.reap", "0", "nokey", deadline}},
	} {
		x.expect(tc.want, tc.args...)
	}
	x.now += 100
	x.expect(num(0), "seshat.reap", "0", "k", "1") // another deadline
	x.expect(num(0), "seshat.reap", "1", "k", deadline)
	if n, _, _ := x.st.Len(0); n != 1 {
		t.Fatalf("keys %d, want the expired key still stored", n)
	}
	x.expect(num(1), "SESHAT.REAP", "0", "k", deadline)
	x.expect(num(0), "seshat.reap", "0", "k", deadline)
	if n, _, _ := x.st.Len(0); n != 0 {
		t.Fatalf("keys %d after reap", n)
	}
	// A key written again since it was found expired is kept.
	x.expect(ok, "set", "k", "v", "PX", "10")
	old := strconv.FormatInt(x.now+10, 10)
	x.now += 10
	x.expect(ok, "set", "k", "w", "PX", "10")
	x.expect(num(0), "seshat.reap", "0", "k", old)
	x.expect(ok, "set", "k", "w")
	x.expect(num(0), "seshat.reap", "0", "k", "0")
	x.expect(bulk("w"), "get", "k")
	// Another database.
	x.db = 2
	x.expect(ok, "set", "k", "v", "PX", "1")
	d2 := strconv.FormatInt(x.now+1, 10)
	x.now++
	x.db = 0
	x.expect(num(1), "seshat.reap", "2", "k", d2)
	x.expect(bulk("w"), "get", "k")
	if n, _, _ := x.st.Len(2); n != 0 {
		t.Fatalf("db 2 keys %d after reap", n)
	}
	// A client cannot read through it.
	if _, err := x.e.Read(x.st, x.now, domain.Call{Args: [][]byte{[]byte("seshat.reap"), []byte("0"), []byte("k"), []byte("1")}}); err == nil {
		t.Error("Read ran seshat.reap")
	}
}

func TestExpired(t *testing.T) {
	x := newTester(t)
	want := map[string]int64{}
	for i := range 60 {
		k := "k" + strconv.Itoa(i)
		switch i % 3 {
		case 0:
			x.expect(ok, "set", k, "v")
		case 1:
			x.expect(ok, "set", k, "v", "PX", strconv.Itoa(i))
			want[k] = x.now + int64(i)
		case 2:
			x.expect(ok, "set", k, "v", "PX", "100000")
		}
	}
	x.db = 3
	x.expect(ok, "set", "elsewhere", "v", "PX", "1")
	x.now += 100
	got := map[string]int64{}
	var cursor uint64
	for pages := 1; ; pages++ {
		keys, deadlines, next, err := x.e.Expired(x.st, x.now, 0, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != len(deadlines) || len(keys) > 7 {
			t.Fatalf("page %d: %d keys, %d deadlines", pages, len(keys), len(deadlines))
		}
		for i, k := range keys {
			got[string(k)] = deadlines[i]
		}
		if next == 0 {
			if pages != 9 { // 60 keys, 7 a page
				t.Errorf("%d pages", pages)
			}
			break
		}
		if next <= cursor {
			t.Fatalf("cursor %d after %d", next, cursor)
		}
		cursor = next
	}
	if len(got) != len(want) {
		t.Errorf("expired %d keys, want %d", len(got), len(want))
	}
	for k, d := range want {
		if got[k] != d {
			t.Errorf("%s: deadline %d, want %d", k, got[k], d)
		}
	}
	// Each found key can be reaped.
	var names []string
	for k := range got {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		x.db = 0
		x.expect(num(1), "seshat.reap", "0", k, strconv.FormatInt(got[k], 10))
	}
	keys, _, next, err := x.e.Expired(x.st, x.now, 0, 0, 0) // max < 1 is 1
	if err != nil || len(keys) != 0 || next == 0 {
		t.Errorf("Expired max 0: %q %d %v", keys, next, err)
	}
	keys, _, _, _ = x.e.Expired(x.st, x.now, 3, 0, 100)
	if len(keys) != 1 || !bytes.Equal(keys[0], []byte("elsewhere")) {
		t.Errorf("db 3: %q", keys)
	}
}

// scanCounter counts a store's scans.
type scanCounter struct {
	Store
	scans int
}

func (s *scanCounter) Scan(db int, from uint64, fn func([]byte, Record) bool) error {
	s.scans++
	return s.Store.Scan(db, from, fn)
}

// Expired does not scan a database in which no key has a deadline (the
// reaper samples every database ten times a second), and does once one
// has.
func TestExpiredSkipsADatabaseWithoutDeadlines(t *testing.T) {
	x := newTester(t)
	for i := range 20 {
		x.expect(ok, "set", "k"+strconv.Itoa(i), "v")
	}
	st := &scanCounter{Store: x.st}
	keys, _, next, err := x.e.Expired(st, x.now, 0, 0, 7)
	if err != nil || len(keys) != 0 || next != 0 || st.scans != 0 {
		t.Errorf("no deadlines: keys %q, next %d, err %v, %d scans; want none, 0, nil, 0 scans", keys, next, err, st.scans)
	}
	x.expect(ok, "set", "k3", "v", "PX", "5")
	x.now += 10
	keys, _, _, err = x.e.Expired(st, x.now, 0, 0, 100)
	if err != nil || len(keys) != 1 || string(keys[0]) != "k3" || st.scans != 1 {
		t.Errorf("one deadline: keys %q, err %v, %d scans; want [k3], nil, 1 scan", keys, err, st.scans)
	}
}
