package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// conn is a minimal RESP2 client: enough to ask INFO, PING and preload
// keys with pipelined MSETs. Every call is bounded by the deadline given to
// dial.
type conn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func dial(addr string, timeout time.Duration) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		c.Close()
		return nil, err
	}
	return &conn{c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10)}, nil
}

func (c *conn) Close() error { return c.c.Close() }

// send buffers one command; flush writes every buffered command.
func (c *conn) send(args ...string) {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n%s\r\n", len(a), a)
	}
}

func (c *conn) flush() error { return c.w.Flush() }

// errReply is a RESP error reply (-ERR ...).
type errReply string

func (e errReply) Error() string { return string(e) }

// read reads one reply: a string for simple and bulk strings (and "" for
// nil), an int64 for integers, a []any for arrays, an errReply for errors.
func (c *conn) read() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	switch body := line[1:]; line[0] {
	case '+':
		return body, nil
	case '-':
		return errReply(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, max(n, 0))
		for range n {
			v, err := c.read()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// do sends one command and returns its reply; an error reply is returned
// as the error.
func (c *conn) do(args ...string) (any, error) {
	c.send(args...)
	if err := c.flush(); err != nil {
		return nil, err
	}
	v, err := c.read()
	if err != nil {
		return nil, err
	}
	if e, ok := v.(errReply); ok {
		return nil, e
	}
	return v, nil
}

// command runs one command on a fresh connection.
func command(addr string, timeout time.Duration, args ...string) (any, error) {
	c, err := dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.do(args...)
}

// infoFields parses an INFO reply into its key:value fields.
func infoFields(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out
}

// preload writes keys key:000000000000 .. key:<keys-1> (the names
// redis-benchmark's -r gives) with valueSize-byte values, batch keys per
// MSET and up to depth MSETs in flight, so that every GET of the benchmark
// finds a value.
func preload(addr string, keys, valueSize, batch, depth int, timeout time.Duration) error {
	c, err := dial(addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	value := strings.Repeat("x", valueSize)
	inFlight := 0
	readOne := func() error {
		v, err := c.read()
		if err != nil {
			return err
		}
		inFlight--
		if e, ok := v.(errReply); ok {
			return fmt.Errorf("MSET: %v", e)
		}
		return nil
	}
	for start := 0; start < keys; start += batch {
		args := []string{"MSET"}
		for k := start; k < min(start+batch, keys); k++ {
			args = append(args, fmt.Sprintf("key:%012d", k), value)
		}
		c.send(args...)
		inFlight++
		if inFlight >= depth {
			if err := c.flush(); err != nil {
				return err
			}
			if err := readOne(); err != nil {
				return err
			}
		}
	}
	if err := c.flush(); err != nil {
		return err
	}
	for inFlight > 0 {
		if err := readOne(); err != nil {
			return err
		}
	}
	// Check one key at each end.
	for _, k := range []int{0, keys - 1} {
		v, err := c.do("GET", fmt.Sprintf("key:%012d", k))
		if err != nil {
			return err
		}
		if s, _ := v.(string); len(s) != valueSize {
			return fmt.Errorf("after preload, GET key:%012d gave %d bytes, want %d", k, len(s), valueSize)
		}
	}
	return nil
}
