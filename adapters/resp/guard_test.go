package resp

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

var testLimits = guardLimits{maxBulk: 100, maxArgs: 10, maxCommand: 250, maxInline: 50}

// respCommand encodes args as a RESP array of bulk strings.
func respCommand(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// feedSplit feeds s to a fresh guard in chunks cut at random points.
func feedSplit(s string, rng *rand.Rand) (string, *guard) {
	g := &guard{}
	for len(s) > 0 {
		n := 1 + rng.IntN(len(s))
		if msg := g.feed([]byte(s[:n]), testLimits); msg != "" {
			return msg, g
		}
		s = s[n:]
	}
	return "", g
}

func TestGuardAcceptsValidStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var s strings.Builder
		for range 1 + rng.IntN(5) {
			if rng.IntN(4) == 0 {
				s.WriteString("PING inline\r\n")
				continue
			}
			args := make([]string, 1+rng.IntN(10))
			for i := range args {
				j := rng.IntN(3)
				args[i] = strings.Repeat("x\r\n"[j:j+1], rng.IntN(30))
			}
			s.WriteString(respCommand(args...))
		}
		msg, g := feedSplit(s.String(), rng)
		if msg != "" || g.state != gStart {
			t.Fatalf("%q: violation %q, state %d; want none, between commands", s.String(), msg, g.state)
		}
	}
}

func TestGuardRefusesOverLimits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		stream, want string
	}{
		{"*1\r\n$101\r\n", "invalid bulk length"},
		{"*11\r\n", "invalid multibulk length"},
		{"*3\r\n$100\r\n" + strings.Repeat("a", 100) + "\r\n$100\r\n" + strings.Repeat("a", 100) + "\r\n$100\r\n" + strings.Repeat("a", 100) + "\r\n", "command too big"},
		{"*1\r\n$99999999999999999999999\r\n", "invalid bulk length"},
		{"*1\r\n$-5\r\n", "invalid bulk length"},
		{"*1\r\n+x\r\n", "expected '$', got '+'"},
		{"*x\r\n", "invalid multibulk length"},
		{strings.Repeat("a", 51) + "\r\n", "too big inline request"},
		{respCommand("ok") + "*1\r\n$1000\r\n", "invalid bulk length"},
	} {
		if msg, _ := feedSplit(c.stream, rng); msg != c.want {
			t.Errorf("%q: violation %q, want %q", c.stream, msg, c.want)
		}
	}
}

// FuzzGuard: any input terminates without panic, and a valid stream
// appended after nothing is never refused.
func FuzzGuard(f *testing.F) {
	f.Add([]byte(respCommand("SET", "k", "v")), uint8(3))
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), uint8(1))
	f.Add([]byte("PING\r\n*1\r\n$4\r\nPING\r\n"), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		g := &guard{}
		k := int(cut) % (len(data) + 1)
		_ = g.feed(data[:k], testLimits)
		_ = g.feed(data[k:], testLimits)
		// The same bytes in one piece give the same verdict.
		g1, g2 := &guard{}, &guard{}
		m1 := g1.feed(data, testLimits)
		m2 := g2.feed(data[:k], testLimits)
		if m2 == "" {
			m2 = g2.feed(data[k:], testLimits)
		}
		if m1 != m2 {
			t.Fatalf("%q cut at %d: %q whole, %q in two pieces", data, k, m1, m2)
		}
	})
}
