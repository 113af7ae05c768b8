package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// RelayHello is the command a relay connection sends first: the node that
// receives it treats the connection's batches as relayed
// (ports.DoOptions.Relayed).
const RelayHello = "SESHAT.RELAYED"

// maxRelayReply bounds one bulk reply read from the leader.
const maxRelayReply = domain.MaxValueSize + 1024

// relayPool keeps idle RESP connections to the leader. Only connections to
// the address last asked for are kept: when the leader changes, the idle
// connections to the old one are closed.
type relayPool struct {
	dialTimeout time.Duration
	maxIdle     int
	mu          struct {
		sync.Mutex
		addr   string
		idle   []*relayConn
		closed bool
	}
}

type relayConn struct {
	c  net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
	at time.Time // when it was put back idle
}

// maxIdleAge is how long an idle relay connection is trusted: older ones
// are closed rather than reused, since the leader may have restarted.
const maxIdleAge = 30 * time.Second

func newRelayPool(dialTimeout time.Duration, maxIdle int) *relayPool {
	return &relayPool{dialTimeout: dialTimeout, maxIdle: maxIdle}
}

func (p *relayPool) close() {
	p.mu.Lock()
	idle := p.mu.idle
	p.mu.idle = nil
	p.mu.closed = true
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.c.Close()
	}
}

// get returns an idle connection to addr or dials one.
func (p *relayPool) get(ctx context.Context, addr string) (*relayConn, error) {
	var stale []*relayConn
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("app: relay: %w", domain.ErrStopped)
	}
	if p.mu.addr != addr {
		stale, p.mu.idle, p.mu.addr = p.mu.idle, nil, addr
	}
	var c *relayConn
	for len(p.mu.idle) > 0 && c == nil {
		last := p.mu.idle[len(p.mu.idle)-1]
		p.mu.idle = p.mu.idle[:len(p.mu.idle)-1]
		if time.Since(last.at) > maxIdleAge {
			stale = append(stale, last)
			continue
		}
		c = last
	}
	p.mu.Unlock()
	for _, s := range stale {
		_ = s.c.Close()
	}
	if c != nil {
		return c, nil
	}
	return p.dial(ctx, addr)
}

func (p *relayPool) dial(ctx context.Context, addr string) (*relayConn, error) {
	d := net.Dialer{Timeout: p.dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("app: relay: dial %s: %w", addr, err)
	}
	c := &relayConn{c: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	_ = nc.SetDeadline(time.Now().Add(p.dialTimeout))
	writeCommand(c.w, [][]byte{[]byte(RelayHello)})
	if err := c.w.Flush(); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("app: relay: hello to %s: %w", addr, err)
	}
	rep, err := readReply(c.r)
	if err == nil && rep.Kind != ports.ReplyOK {
		err = fmt.Errorf("unexpected reply %+v", rep)
	}
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("app: relay: hello to %s: %w", addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func (p *relayPool) put(addr string, c *relayConn) {
	c.at = time.Now()
	p.mu.Lock()
	if p.mu.closed || p.mu.addr != addr || len(p.mu.idle) >= p.maxIdle {
		p.mu.Unlock()
		_ = c.c.Close()
		return
	}
	p.mu.idle = append(p.mu.idle, c)
	p.mu.Unlock()
}

// do sends reqs to addr as one pipeline and reads one reply per request
// into replies. sent reports whether any byte of the batch may have
// reached the leader; when it is true and err is not nil, the replies not
// received hold an error wrapping domain.ErrLeadershipLost (unknown
// outcome).
func (p *relayPool) do(ctx context.Context, addr string, reqs []ports.Request, replies []ports.Reply) (sent bool, err error) {
	c, err := p.get(ctx, addr)
	if err != nil {
		return false, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.c.SetDeadline(dl)
	}
	for _, r := range reqs {
		writeCommand(c.w, requestArgs(r))
	}
	sent = true
	got := 0
	err = c.w.Flush()
	for err == nil && got < len(reqs) {
		var rep ports.Reply
		rep, err = readReply(c.r)
		if err == nil {
			replies[got] = rep
			got++
		}
	}
	if err != nil {
		_ = c.c.Close()
		fill(replies, got, fmt.Errorf("app: relay to %s broke after sending: %w: %w", addr, domain.ErrLeadershipLost, err))
		return sent, err
	}
	_ = c.c.SetDeadline(time.Time{})
	p.put(addr, c)
	return sent, nil
}

// requestArgs returns the RESP command that asks for r.
func requestArgs(r ports.Request) [][]byte {
	args := [][]byte{[]byte(r.Kind.String())}
	switch r.Kind {
	case ports.ReqSet, ports.ReqMSet:
		for i, k := range r.Keys {
			args = append(args, k, r.Values[i])
		}
	default:
		args = append(args, r.Keys...)
	}
	return args
}

func writeCommand(w *bufio.Writer, args [][]byte) {
	w.WriteByte('*')
	w.WriteString(strconv.Itoa(len(args)))
	w.WriteString("\r\n")
	for _, a := range args {
		w.WriteByte('$')
		w.WriteString(strconv.Itoa(len(a)))
		w.WriteString("\r\n")
		w.Write(a)
		w.WriteString("\r\n")
	}
}

var errBadReply = errors.New("app: relay: malformed reply")

func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errBadReply
		}
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, errBadReply
	}
	return line[:len(line)-2], nil
}

// readBulk reads a bulk string's body after its header; nil for $-1.
func readBulk(r *bufio.Reader, header []byte) ([]byte, bool, error) {
	n, err := strconv.ParseInt(string(header), 10, 64)
	if err != nil || n < -1 || n > maxRelayReply {
		return nil, false, errBadReply
	}
	if n == -1 {
		return nil, false, nil
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, false, err
	}
	if b[n] != '\r' || b[n+1] != '\n' {
		return nil, false, errBadReply
	}
	return b[:n:n], true, nil
}

// readReply reads one RESP2 reply of the shapes the KV commands produce.
func readReply(r *bufio.Reader) (ports.Reply, error) {
	line, err := readLine(r)
	if err != nil {
		return ports.Reply{}, err
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return ports.Reply{Kind: ports.ReplyOK}, nil
	case '-':
		return ports.ErrReply(&ports.RemoteError{Text: string(body)}), nil
	case ':':
		n, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil {
			return ports.Reply{}, errBadReply
		}
		return ports.Reply{Kind: ports.ReplyInt, Int: n}, nil
	case '$':
		b, ok, err := readBulk(r, body)
		if err != nil {
			return ports.Reply{}, err
		}
		if !ok {
			return ports.Reply{Kind: ports.ReplyNil}, nil
		}
		return ports.Reply{Kind: ports.ReplyBulk, Value: b}, nil
	case '*':
		n, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil || n < -1 || n > domain.MaxOps {
			return ports.Reply{}, errBadReply
		}
		if n == -1 {
			return ports.Reply{Kind: ports.ReplyNil}, nil
		}
		vals := make([][]byte, n)
		for i := range vals {
			h, err := readLine(r)
			if err != nil {
				return ports.Reply{}, err
			}
			if h[0] != '$' {
				return ports.Reply{}, errBadReply
			}
			b, ok, err := readBulk(r, h[1:])
			if err != nil {
				return ports.Reply{}, err
			}
			if ok {
				vals[i] = b
			}
		}
		return ports.Reply{Kind: ports.ReplyArray, Values: vals}, nil
	}
	return ports.Reply{}, errBadReply
}
