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

// maxRelayReply bounds the bulk reply of one relayed batch.
const maxRelayReply = 4 * domain.MaxValueSize

// relayPool keeps idle RESP connections to the leader. Only connections to
// the address last asked for are kept: when the leader changes, the idle
// connections to the old one are closed.
type relayPool struct {
	dialTimeout time.Duration
	maxIdle     int
	password    string // sent with AUTH first, if set
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

func newRelayPool(dialTimeout time.Duration, maxIdle int, password string) *relayPool {
	return &relayPool{dialTimeout: dialTimeout, maxIdle: maxIdle, password: password}
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
	hello := [][][]byte{{[]byte(RelayHello)}}
	if p.password != "" {
		hello = append([][][]byte{{[]byte("AUTH"), []byte(p.password)}}, hello...)
	}
	for _, args := range hello {
		writeCommand(c.w, args)
	}
	err = c.w.Flush()
	for range hello {
		var rep domain.Reply
		if err == nil {
			rep, err = readReply(c.r)
		}
		if err == nil && (rep.Kind != domain.ReplyStatus || rep.Str != "OK") {
			err = fmt.Errorf("unexpected reply %v", rep)
		}
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

// RelayDo is the command that carries a relayed batch: its one argument
// is ports.EncodeRequests of the batch, its reply a bulk string of
// ports.EncodeReplies (or an error reply refusing the whole batch).
const RelayDo = "SESHAT.DO"

// do sends reqs to addr as one relayed batch and reads the replies into
// replies. sent reports whether any byte of the batch may have reached
// the leader; when it is true and err is not nil, the replies hold an
// error wrapping domain.ErrLeadershipLost (unknown outcome).
func (p *relayPool) do(ctx context.Context, addr string, reqs []ports.Request, replies []ports.Reply) (sent bool, err error) {
	c, err := p.get(ctx, addr)
	if err != nil {
		return false, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.c.SetDeadline(dl)
	}
	writeCommand(c.w, [][]byte{[]byte(RelayDo), ports.EncodeRequests(reqs)})
	sent = true
	var rep domain.Reply
	err = c.w.Flush()
	if err == nil {
		rep, err = readReply(c.r)
	}
	if err == nil {
		switch rep.Kind {
		case domain.ReplyError:
			// The whole batch was refused (not the leader, shutting down).
			for i := range replies {
				replies[i] = ports.Reply{Value: rep}
			}
		case domain.ReplyBulk:
			var vals []domain.Reply
			if vals, err = ports.DecodeReplies(rep.Bulk, len(reqs)); err == nil {
				for i, v := range vals {
					replies[i] = ports.Reply{Value: v}
				}
			}
		default:
			err = fmt.Errorf("%w: %v", errBadReply, rep)
		}
	}
	if err != nil {
		_ = c.c.Close()
		fill(replies, 0, fmt.Errorf("app: relay to %s broke after sending: %w: %w", addr, domain.ErrLeadershipLost, err))
		return sent, err
	}
	_ = c.c.SetDeadline(time.Time{})
	p.put(addr, c)
	return sent, nil
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

// readReply reads one reply of the shapes a relay gets: a status, an
// error or a bulk string.
func readReply(r *bufio.Reader) (domain.Reply, error) {
	line, err := readLine(r)
	if err != nil {
		return domain.Reply{}, err
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return domain.Reply{Kind: domain.ReplyStatus, Str: string(body)}, nil
	case '-':
		return domain.ErrorReply(string(body)), nil
	case '$':
		b, ok, err := readBulk(r, body)
		if err != nil {
			return domain.Reply{}, err
		}
		if !ok {
			return domain.NilReply, nil
		}
		return domain.BulkReply(b), nil
	}
	return domain.Reply{}, errBadReply
}
