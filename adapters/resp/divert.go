package resp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"strconv"

	"github.com/tidwall/redcon"
)

// Large bulk strings bypass redcon. redcon reads a command into one
// buffer that doubles until the command fits, then copies the command out
// of it: a 256 MiB SET held the value about three times over (the last
// two buffers and the copy) before Seshat saw it, and the copying of
// hundreds of MB on the connection's goroutine kept the node's other
// goroutines, its Raft loop among them, from running. So the guard takes
// a bulk string of guardLimits.divert bytes or more out of the stream as
// it arrives: its body is read from the socket straight into a buffer of
// exactly its size (as Redis does for a big argument), and redcon is
// handed a short placeholder bulk in its place. handle swaps the
// placeholders back (takeLarge) before the command is parsed.
//
// A large reply takes the same way out (writeBulk): redcon's write buffer
// would copy it, growing by doubling; instead redcon buffers a
// placeholder, and guardConn.Write, handed redcon's buffer when redcon
// flushes it, writes the reply from where it lies in its place.
//
// A placeholder is a random nonce and a sequence number: a client cannot
// guess it, so no bulk a client sends or reads is taken for one, and the
// bulks are matched in the order they were placed.

// writeBulk writes b to conn as a bulk string, from b itself if it is
// large.
func writeBulk(conn redcon.Conn, b []byte) {
	gc, ok := conn.NetConn().(*guardConn)
	if !ok || len(b) < divertBytes {
		conn.WriteBulk(b)
		return
	}
	conn.WriteRaw(gc.placeLarge(b))
}

// placeLarge queues b to be written in place of the bulk it returns.
func (c *guardConn) placeLarge(b []byte) []byte {
	w := &c.wd
	out := strconv.AppendInt([]byte{'$'}, int64(len(b)), 10)
	out = append(append(append(out, "\r\n"...), w.placeholder(w.sent)...), "\r\n"...)
	w.sent++
	w.ready = append(w.ready, b)
	return out
}

// Write writes p, redcon's buffered replies, with the large replies of
// writeBulk in place of their placeholders.
func (c *guardConn) Write(p []byte) (int, error) {
	w := &c.wd
	if len(w.ready) == 0 {
		return c.Conn.Write(p)
	}
	n := len(p)
	for len(w.ready) > 0 {
		ph := w.placeholder(w.taken)
		i := bytes.Index(p, ph)
		if i < 0 {
			break
		}
		if _, err := c.Conn.Write(p[:i]); err != nil {
			return 0, err
		}
		if _, err := c.Conn.Write(w.ready[0]); err != nil {
			return 0, err
		}
		w.ready[0] = nil
		w.ready = w.ready[1:]
		w.taken++
		p = p[i+len(ph):]
	}
	if _, err := c.Conn.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// divertBytes is the default divert limit: values this large take the
// large path throughout (chunked in Pebble, streamed to followers).
const divertBytes = 1 << 20

// placeholderLen is the length of a placeholder: nonce and sequence.
const placeholderLen = 16 + 8

// diverter is a guardConn's state for large bulks, read or written.
type diverter struct {
	body  []byte // the body being read, nil if none
	got   int    // bytes of body read so far
	crlf  [2]byte
	gotLF int      // bytes of crlf read so far
	out   []byte   // a placeholder bulk yet to be handed to redcon
	ready [][]byte // bulks whose placeholders redcon has, oldest first
	nonce []byte
	sent  uint64 // placeholders handed out
	taken uint64 // placeholders swapped back
}

func (d *diverter) placeholder(seq uint64) []byte {
	if d.nonce == nil {
		d.nonce = make([]byte, 16)
		_, _ = rand.Read(d.nonce) // crypto/rand.Read does not fail
	}
	return binary.BigEndian.AppendUint64(bytes.Clone(d.nonce), seq)
}

// Read reads the client's stream, checked by the guard, with large bulk
// strings replaced by placeholders.
func (c *guardConn) Read(p []byte) (int, error) {
	for {
		if len(c.d.out) > 0 {
			n := copy(p, c.d.out)
			c.d.out = c.d.out[n:]
			return n, nil
		}
		if c.d.body != nil {
			if err := c.readBody(); err != nil {
				return 0, err
			}
			continue
		}
		n, err := c.read(p)
		if n == 0 {
			return 0, err
		}
		msg, st := c.g.scan(p[:n], c.lim, true)
		if st.at == 0 && st.body == 0 && n == len(p) {
			// A header fills the whole of p: there is no room to hold it
			// back until it is whole, so it goes through redcon.
			msg, st = c.g.scan(p[:n], c.lim, false)
		}
		if msg != "" {
			return 0, c.refuse(msg)
		}
		if st.at < 0 {
			return n, err
		}
		// Bytes from the header on are read again: the body's first
		// bytes into the body's buffer, a partial header once it is whole.
		keep := st.at
		if st.body > 0 {
			keep = st.body
			c.d.body, c.d.got, c.d.gotLF = make([]byte, st.size), 0, 0
		}
		c.unread(p[keep:n], err)
		if st.at > 0 {
			return st.at, nil
		}
		if st.body == 0 {
			if err := c.fill(); err != nil {
				return 0, err
			}
		}
	}
}

// unread puts b back in front of what is still to be read, and err
// behind it.
func (c *guardConn) unread(b []byte, err error) {
	c.stash = append(bytes.Clone(b), c.stash...)
	if err != nil && c.stashErr == nil {
		c.stashErr = err
	}
}

// fill reads more of the socket behind what is stashed: a header cut at a
// read's end is held until it is whole.
func (c *guardConn) fill() error {
	if c.stashErr != nil {
		return c.stashErr
	}
	var buf [512]byte
	n, err := c.Conn.Read(buf[:])
	c.stash = append(c.stash, buf[:n]...)
	c.stashErr = err
	return nil
}

// readBody reads the large bulk being diverted, then its CRLF, and queues
// its placeholder for redcon.
func (c *guardConn) readBody() error {
	d := &c.d
	for d.got < len(d.body) {
		n, err := c.read(d.body[d.got:])
		d.got += n
		if err != nil {
			return err
		}
	}
	for d.gotLF < 2 {
		n, err := c.read(d.crlf[d.gotLF:])
		d.gotLF += n
		if err != nil {
			return err
		}
	}
	if d.crlf != [2]byte{'\r', '\n'} {
		return c.refuse("invalid bulk length")
	}
	d.ready = append(d.ready, d.body)
	d.body = nil
	c.g.endBody()
	d.out = redcon.AppendBulk(nil, d.placeholder(d.sent))
	d.sent++
	return nil
}

// takeLarge swaps the placeholders among cmds' arguments for the bulks
// they stand for and returns the bytes swapped in. Only the next
// placeholder due can match: bulks are read and commands handled in
// order, on the connection's one goroutine.
func (c *guardConn) takeLarge(cmds []redcon.Command) int {
	d, n := &c.d, 0
	for i := range cmds {
		for j, a := range cmds[i].Args {
			if len(d.ready) == 0 {
				return n
			}
			if len(a) != placeholderLen || !bytes.Equal(a, d.placeholder(d.taken)) {
				continue
			}
			cmds[i].Args[j] = d.ready[0]
			n += len(d.ready[0])
			d.ready[0] = nil
			d.ready = d.ready[1:]
			d.taken++
		}
	}
	return n
}
