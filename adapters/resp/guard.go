package resp

import (
	"errors"
	"net"
	"strconv"
)

// guardConn checks a client's RESP stream as it is read, before redcon
// buffers it: redcon keeps reading a command until it is whole, so a bulk
// string announced as 10 GB, sent slowly, would grow its buffer without
// bound. The guard tracks the stream's shape (array header, bulk headers,
// bulk bodies, inline lines) and, at the first header past a limit or the
// first byte that breaks the grammar, writes Redis's protocol error to the
// client and fails the read, so redcon closes the connection having
// buffered at most one bounded chunk. Commands read before stay valid.
type guardConn struct {
	net.Conn
	lim guardLimits
	g   guard
	// stash and stashErr: what watchClose read while the client was
	// blocked, read before the socket (blocking.go).
	stash    []byte
	stashErr error
	d        diverter // large bulk strings read (divert.go)
	wd       diverter // large bulk strings written
}

type guardLimits struct {
	maxBulk    int64 // one bulk string, bytes
	maxArgs    int64 // arguments of one command
	maxCommand int64 // all bulk strings of one command, bytes
	maxInline  int   // one inline command line, bytes
	// divert: a bulk string of this many bytes or more is read into a
	// buffer of its own instead of through redcon (divert.go); 0: never.
	divert int64
}

// errGuard is the read error after a protocol violation.
var errGuard = errors.New("resp: protocol violation, connection closed")

// refuse writes Redis's protocol error to the client and returns the
// read error that makes redcon close the connection.
func (c *guardConn) refuse(msg string) error {
	_, _ = c.Conn.Write([]byte("-ERR Protocol error: " + msg + "\r\n"))
	return errGuard
}

// guard is the scanner's state between reads.
type guard struct {
	state   int
	header  []byte // digits of the header being read
	left    int64  // bulk strings left in the command, or bytes left in a body
	args    int64  // bulk strings left after the current one
	command int64  // bytes of bulk strings in the command so far
	inline  int    // bytes of the inline line so far
	pending int    // the state after the current header's LF
	// mark: where the current bulk header's '$' is in the chunk being
	// scanned (-1: not in it), and the counts as they were before it, to
	// scan the header again from there (divert.go).
	mark                  int
	markArgs, markCommand int64
}

// stop is where scan stopped short of its chunk's end, for the header of
// a bulk string that begins at at: body is where a large bulk's body
// begins (the header ended past the divert limit), or 0 if the header is
// not whole yet (the guard is back where it was before the header).
type stop struct {
	at, body int
	size     int64
}

var noStop = stop{at: -1}

const (
	gStart     = iota // before a command
	gArrayLen         // after '*', reading the count
	gBulkStart        // expecting '$'
	gBulkLen          // after '$', reading the length
	gBody             // inside a bulk body (and its CRLF)
	gInline           // inside an inline command
	gHeaderLF         // a header's CR was read, expecting LF
)

// feed scans b and returns Redis's words for the first violation, or "".
func (g *guard) feed(b []byte, lim guardLimits) string {
	msg, _ := g.scan(b, lim, false)
	return msg
}

// scan is feed that, if cut is set and lim.divert is not 0, stops at a
// bulk header announcing lim.divert bytes or more, and at a bulk header
// the chunk ends inside of, so that the caller can divert the bulk.
func (g *guard) scan(b []byte, lim guardLimits, cut bool) (string, stop) {
	cut = cut && lim.divert > 0
	g.mark = -1
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch g.state {
		case gStart:
			switch c {
			case '*':
				g.state, g.header, g.command = gArrayLen, g.header[:0], 0
			case '\n':
				// Blank lines between commands are ignored. A line that
				// opens with '\r' is, for redcon, an inline command (one
				// of "\r\n" has no arguments): so it is here too, or the
				// guard and redcon would read what follows differently.
			default:
				g.state, g.inline = gInline, 1
			}
		case gInline:
			if c == '\n' {
				g.state = gStart
				continue
			}
			if g.inline++; g.inline > lim.maxInline {
				return "too big inline request", noStop
			}
		case gArrayLen, gBulkLen:
			if c == '\r' {
				if msg := g.endHeader(lim); msg != "" {
					return msg, noStop
				}
				continue
			}
			if (c < '0' || c > '9') && !(c == '-' && len(g.header) == 0) || len(g.header) >= 20 {
				if g.state == gArrayLen {
					return "invalid multibulk length", noStop
				}
				return "invalid bulk length", noStop
			}
			g.header = append(g.header, c)
		case gHeaderLF:
			if c != '\n' {
				return "expected '\\n' after a header", noStop
			}
			g.state = g.afterLF()
			if cut && g.state == gBody && g.mark >= 0 && g.left-2 >= lim.divert {
				return "", stop{at: g.mark, body: i + 1, size: g.left - 2}
			}
		case gBulkStart:
			if c != '$' {
				return "expected '$', got '" + string(rune(c)) + "'", noStop
			}
			g.state, g.header = gBulkLen, g.header[:0]
			g.mark, g.markArgs, g.markCommand = i, g.args, g.command
		case gBody:
			// Skip the rest of the body at once.
			skip := min(int64(len(b)-i), g.left)
			g.left -= skip
			i += int(skip) - 1
			if g.left == 0 {
				g.endBody()
			}
		}
	}
	inHeader := g.state == gBulkLen || g.state == gHeaderLF && g.pending == gBody
	if cut && inHeader && g.mark >= 0 {
		g.state, g.args, g.command = gBulkStart, g.markArgs, g.markCommand
		return "", stop{at: g.mark}
	}
	return "", noStop
}

// endBody moves past a bulk body that has been read whole.
func (g *guard) endBody() {
	g.left = 0
	g.state = gBulkStart
	if g.args == 0 {
		g.state = gStart
	}
}

// endHeader checks a finished header (its CR just read) against the
// limits and sets what follows its LF.
func (g *guard) endHeader(lim guardLimits) string {
	n, err := strconv.ParseInt(string(g.header), 10, 64)
	if g.state == gArrayLen {
		if err != nil || n > lim.maxArgs {
			return "invalid multibulk length"
		}
		g.args = max(n, 0)
		g.pending = gBulkStart
		if g.args == 0 {
			g.pending = gStart
		}
		g.state = gHeaderLF
		return ""
	}
	if err != nil || n < 0 || n > lim.maxBulk {
		return "invalid bulk length"
	}
	if g.command += n; g.command > lim.maxCommand {
		return "command too big"
	}
	g.args--
	g.left = n + 2 // the body and its CRLF
	g.pending = gBody
	g.state = gHeaderLF
	return ""
}

func (g *guard) afterLF() int { return g.pending }
