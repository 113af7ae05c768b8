package keyspace

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cases checked against redis-server 7.0.15 (KEYS pattern over the key).
var matchCases = []struct {
	pattern, s string
	want       bool
}{
	{"", "", true},
	{"", "a", false},
	{"a", "", false},
	{"*", "", false}, // KEYS and SCAN special-case "*" before matching
	{"**", "", false},
	{"*", "anything", true},
	{"**", "x", true},
	{"a*", "a", true},
	{"a*", "abc", true},
	{"a*", "ba", false},
	{"*a", "ba", true},
	{"*a", "ab", false},
	{"a*b*c", "axxbyyc", true},
	{"a*b*c", "axxbyy", false},
	{"a*b*c", "acb", false},
	{"*a*", "bab", true},
	{"?", "a", true},
	{"?", "", false},
	{"?", "ab", false},
	{"??", "ab", true},
	{"a?c", "abc", true},
	{"h?llo", "hello", true},
	{"h*llo", "heeeello", true},
	{"h[ae]llo", "hallo", true},
	{"h[ae]llo", "hillo", false},
	{"h[^e]llo", "hallo", true},
	{"h[^e]llo", "hello", false},
	{"h[a-b]llo", "hbllo", true},
	{"h[a-b]llo", "hcllo", false},
	{"[z-a]", "m", true}, // reversed range
	{"[z-a]", "A", false},
	{"[a-]", "a", true},  // "-]" ends a range at ']': the class is unterminated
	{"[a-]", "^", true},  // ']'..'a' holds '^'
	{"[a-]", "-", false}, //
	{"[a-]x", "ax", false},
	{"[a-]x", "x", true},
	{"[]", "]", false},
	{"[]]", "]", false},
	{"[\\]]", "]", true},
	{"[\\]", "]", true}, // the escaped ']' does not close it
	{"[\\", "\\", true},
	{"[", "", false},
	{"[", "a", false},
	{"[a", "a", true}, // unterminated class ends with the pattern
	{"[a", "ab", false},
	{"[ab", "b", true},
	{"[^", "x", true},
	{"[^", "", false},
	{"[^a", "a", false},
	{"[^a", "b", true},
	{"[^]", "x", true},
	{"[^]", "]", true},
	{"[!a]", "!", true}, // '!' is not negation
	{"[!a]", "b", false},
	{"\\*", "*", true},
	{"\\*", "a", false},
	{"\\?", "?", true},
	{"\\[a]", "[a]", true},
	{"\\", "\\", true},
	{"a\\", "a\\", true},
	{"\\a", "a", true},
	{"a\\*b", "a*b", true},
	{"a\\*b", "axb", false},
	{"*\\", "x\\", true},
	{"[a-z]*", "hello", true},
	{"[a-z]*", "Hello", false},
	{"A", "a", false},
	{"[A-Z]", "a", false},
	{"*?", "", false},
	{"*?", "a", true},
	{"?*", "a", true},
	{"a**", "a", true},
	{"a***b", "ab", true},
	{"*[", "a", false},
	{"*[b", "ab", true},
	{"x*[^", "xa", true},
	{"[[]", "[", true},
	{"[-a]", "-", true},
	{"[a-c-e]", "d", false},
	{"[a-c-e]", "-", true},
	{"[a-c-e]", "e", true},
	{"\xff", "\xff", true},
	{"[\x80-\xff]", "\x90", true},
	{"[a-\xff]", "b", false}, // signed chars: '\xff' is -1, so [-1, 'a']
	{"[a-\xff]", "A", true},
	{"[a-\xff]", "\xff", true},
	{"[\x01-\xff]", "\x80", false},
	{"a\x00b", "a\x00b", true},
	{"a?b", "a\x00b", true},
}

func TestMatch(t *testing.T) {
	for _, tc := range matchCases {
		if got := Match([]byte(tc.pattern), []byte(tc.s), false); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestMatchNocase(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"hello", "HeLLo", true},
		{"H*O", "hello", true},
		{"[A-C]", "b", true},
		{"[a-c]", "B", true},
		{"[ABC]", "b", true},
		{"[^ABC]", "b", false},
		{"[\\A]", "a", false}, // an escape in a class compares exactly
		{"\\A", "a", true},
		{"[Z-a]", "_", false}, // folded after ordering: 'z'..'a' is empty
		{"[Z-a]", "a", false},
		{"[@-B]", "b", true}, // '@'..'b' after folding
		{"?", "\xc4", true},
		{"\xc4", "\xe4", false}, // only ASCII letters fold
	}
	for _, tc := range cases {
		if got := Match([]byte(tc.pattern), []byte(tc.s), true); got != tc.want {
			t.Errorf("Match(%q, %q, nocase) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// TestMatchNesting: Redis 7 gives up beyond 1000 nested '*' (checked
// against redis-server 7.0.15: "*a" 1000 times matches 1100 a's, 1001
// times does not).
func TestMatchNesting(t *testing.T) {
	s := bytes.Repeat([]byte("a"), 1100)
	if !Match(bytes.Repeat([]byte("*a"), 1000), s, false) {
		t.Error("1000 stars: no match")
	}
	if Match(bytes.Repeat([]byte("*a"), 1001), s, false) {
		t.Error("1001 stars: match")
	}
}

// TestMatchAbusive: patterns that backtrack exponentially in a naive
// matcher finish at once.
func TestMatchAbusive(t *testing.T) {
	start := time.Now()
	s := bytes.Repeat([]byte("a"), 5000)
	p := []byte(strings.Repeat("*a", 100) + "b")
	if Match(p, s, false) {
		t.Error("match")
	}
	p = []byte(strings.Repeat("a*", 900) + "b")
	if Match(p, s, true) {
		t.Error("match")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func FuzzMatch(f *testing.F) {
	for _, tc := range matchCases {
		f.Add([]byte(tc.pattern), []byte(tc.s), false)
	}
	f.Add([]byte(strings.Repeat("*a", 40)+"b"), bytes.Repeat([]byte("a"), 200), true)
	f.Fuzz(func(t *testing.T, pattern, s []byte, nocase bool) {
		if len(pattern) > 4096 || len(s) > 4096 {
			return
		}
		got := Match(pattern, s, nocase)
		// A pattern without special bytes matches only itself.
		if !bytes.ContainsAny(pattern, "*?[\\") && !nocase && got != bytes.Equal(pattern, s) {
			t.Fatalf("Match(%q, %q) = %v", pattern, s, got)
		}
		// Folding case only adds matches for a pattern without classes
		// or escapes.
		if !bytes.ContainsAny(pattern, "[\\") && Match(pattern, s, false) && !Match(pattern, s, true) {
			t.Fatalf("Match(%q, %q): case-sensitive match, no nocase match", pattern, s)
		}
	})
}

// TestMatchAgainstRedis compares Match with KEYS on a live Redis over
// random patterns, when SESHAT_REDIS_ADDR names one (its database 9 is
// flushed).
func TestMatchAgainstRedis(t *testing.T) {
	addr := os.Getenv("SESHAT_REDIS_ADDR")
	if addr == "" {
		t.Skip("SESHAT_REDIS_ADDR not set")
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	call := func(args ...string) any {
		t.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := conn.Write([]byte(b.String())); err != nil {
			t.Fatal(err)
		}
		v, err := readRESP(r)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	call("SELECT", "9")
	call("FLUSHDB")
	for _, tc := range matchCases {
		if tc.pattern == "*" {
			continue
		}
		call("SET", tc.s, "v")
		got := slices.Contains(call("KEYS", tc.pattern).([]any), any(tc.s))
		if got != tc.want {
			t.Errorf("redis: KEYS %q with key %q: %v, table says %v", tc.pattern, tc.s, got, tc.want)
		}
		call("DEL", tc.s)
	}
	alphabet := []string{"a", "b", "A", "-", "]", "[", "^", "\\", "*", "?", "\xff", "\x80", "z", "\x00"}
	rng := rand.New(rand.NewSource(1))
	word := func(n int) string {
		var b strings.Builder
		for range rng.Intn(n + 1) {
			b.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		return b.String()
	}
	keys := map[string]bool{}
	for len(keys) < 300 {
		keys[word(5)] = true
	}
	for k := range keys {
		call("SET", k, "v")
	}
	for range 3000 {
		p := word(7)
		if p == "*" {
			continue
		}
		var want []string
		for _, k := range call("KEYS", p).([]any) {
			want = append(want, k.(string))
		}
		var got []string
		for k := range keys {
			if Match([]byte(p), []byte(k), false) {
				got = append(got, k)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("pattern %q: redis %q, Match %q", p, want, got)
		}
	}
	call("FLUSHDB")
}

// readRESP reads one RESP2 reply: strings, integers, arrays; an error
// reply is returned as an error.
func readRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, fmt.Errorf("%s", line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readRESP(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("bad reply %q", line)
}
