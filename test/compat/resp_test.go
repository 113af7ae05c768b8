package compat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Value is one RESP2 reply as a tree. Type is the RESP type byte: '+'
// (simple string), '-' (error), ':' (integer), '$' (bulk string) or '*'
// (array). Nil marks a nil bulk ($-1) or a nil array (*-1).
type Value struct {
	Type  byte
	Str   string // simple string, error text (without '-') or bulk
	Int   int64
	Nil   bool
	Elems []Value
}

// String renders v on one line, with bulks quoted and long ones cut.
func (v Value) String() string {
	var b strings.Builder
	v.format(&b)
	return b.String()
}

func (v Value) format(b *strings.Builder) {
	switch v.Type {
	case '+':
		b.WriteString("+" + quoteShort(v.Str))
	case '-':
		b.WriteString("-" + quoteShort(v.Str))
	case ':':
		b.WriteString(":" + strconv.FormatInt(v.Int, 10))
	case '$':
		if v.Nil {
			b.WriteString("(nil)")
		} else {
			b.WriteString(quoteShort(v.Str))
		}
	case '*':
		if v.Nil {
			b.WriteString("(nil array)")
			return
		}
		b.WriteString("[")
		for i, e := range v.Elems {
			if i > 0 {
				b.WriteString(", ")
			}
			e.format(b)
		}
		b.WriteString("]")
	default:
		fmt.Fprintf(b, "<%c %q>", v.Type, v.Str)
	}
}

// quoteShort quotes s, cutting it to 200 bytes (and saying so).
func quoteShort(s string) string {
	if len(s) <= 200 {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s...(%d bytes)", strconv.Quote(s[:200]), len(s))
}

// quoteCmd renders a command as its quoted arguments.
func quoteCmd(args []string) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = quoteShort(a)
	}
	return strings.Join(parts, " ")
}

// Conn is a minimal RESP2 client: one request, one reply, no pipelining.
type Conn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
}

func dial(addr string) (*Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &Conn{addr: addr, c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

func (c *Conn) Close() error { return c.c.Close() }

// Do sends args as an array of bulk strings and reads one reply.
func (c *Conn) Do(args ...string) (Value, error) {
	if err := c.c.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
		return Value{}, err
	}
	if _, err := c.c.Write(encode(args)); err != nil {
		return Value{}, fmt.Errorf("%s: write: %w", c.addr, err)
	}
	v, err := readValue(c.r)
	if err != nil {
		return Value{}, fmt.Errorf("%s: read reply: %w", c.addr, err)
	}
	return v, nil
}

func encode(args []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n", len(a))
		b.WriteString(a)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(line, "\r\n") {
		return "", fmt.Errorf("line %q not ended by CRLF", line)
	}
	return line[:len(line)-2], nil
}

// readValue reads one RESP2 reply.
func readValue(r *bufio.Reader) (Value, error) {
	line, err := readLine(r)
	if err != nil {
		return Value{}, err
	}
	if line == "" {
		return Value{}, errors.New("empty reply line")
	}
	t, rest := line[0], line[1:]
	switch t {
	case '+', '-':
		return Value{Type: t, Str: rest}, nil
	case ':':
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return Value{}, fmt.Errorf("bad integer reply %q", line)
		}
		return Value{Type: t, Int: n}, nil
	case '$':
		n, err := strconv.Atoi(rest)
		if err != nil || n < -1 {
			return Value{}, fmt.Errorf("bad bulk length %q", line)
		}
		if n == -1 {
			return Value{Type: t, Nil: true}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return Value{}, err
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return Value{}, fmt.Errorf("bulk of %d bytes not ended by CRLF", n)
		}
		return Value{Type: t, Str: string(buf[:n])}, nil
	case '*':
		n, err := strconv.Atoi(rest)
		if err != nil || n < -1 {
			return Value{}, fmt.Errorf("bad array length %q", line)
		}
		if n == -1 {
			return Value{Type: t, Nil: true}, nil
		}
		v := Value{Type: t, Elems: make([]Value, 0, n)}
		for range n {
			e, err := readValue(r)
			if err != nil {
				return Value{}, err
			}
			v.Elems = append(v.Elems, e)
		}
		return v, nil
	}
	return Value{}, fmt.Errorf("unexpected reply type in %q", line)
}

func TestReadValue(t *testing.T) {
	in := "+OK\r\n-ERR bad\r\n:-42\r\n$-1\r\n$0\r\n\r\n$4\r\na\r\n\x00\r\n*-1\r\n*0\r\n*2\r\n$1\r\nx\r\n*1\r\n:1\r\n"
	want := []Value{
		{Type: '+', Str: "OK"},
		{Type: '-', Str: "ERR bad"},
		{Type: ':', Int: -42},
		{Type: '$', Nil: true},
		{Type: '$', Str: ""},
		{Type: '$', Str: "a\r\n\x00"},
		{Type: '*', Nil: true},
		{Type: '*', Elems: []Value{}},
		{Type: '*', Elems: []Value{{Type: '$', Str: "x"}, {Type: '*', Elems: []Value{{Type: ':', Int: 1}}}}},
	}
	r := bufio.NewReader(strings.NewReader(in))
	for i, w := range want {
		got, err := readValue(r)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if d := cmp.Diff(w, got); d != "" {
			t.Fatalf("reply %d (-want +got):\n%s", i, d)
		}
	}
	for _, bad := range []string{"$3\r\nab\r\n", ":x\r\n", "?\r\n", "+OK\n", "$2\r\nabcd"} {
		if _, err := readValue(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("readValue(%q) succeeded", bad)
		}
	}
	if got, want := string(encode([]string{"SET", "", "a\r\n"})), "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$3\r\na\r\n\r\n"; got != want {
		t.Errorf("encode = %q, want %q", got, want)
	}
}
