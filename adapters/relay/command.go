package relay

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

// Command sends one admin command (SESHAT.MEMBER ...) to the node at addr
// on a connection of its own marked relayed (so that node never relays it
// further), and returns the reply. It is for rare commands: it dials,
// says AUTH and the hello, sends, reads and closes.
func (c *Client) Command(ctx context.Context, addr string, args ...[]byte) (domain.Reply, error) {
	return SendCommand(ctx, addr, c.opts.Password, true, args...)
}

// SendCommand sends one command to addr on a new connection, with AUTH
// first if password is set and the relay hello if relayed, and returns
// its reply (any RESP2 shape). Used by seshatd --join too.
func SendCommand(ctx context.Context, addr, password string, relayed bool, args ...[]byte) (domain.Reply, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return domain.Reply{}, fmt.Errorf("relay: dial %s: %w: %w", addr, domain.ErrUnreachable, err)
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	} else {
		_ = nc.SetDeadline(time.Now().Add(time.Minute))
	}
	var b []byte
	n := 0
	if password != "" {
		b = appendCommand(b, []byte("AUTH"), []byte(password))
		n++
	}
	if relayed {
		b = appendCommand(b, []byte(Hello))
		n++
	}
	b = appendCommand(b, args...)
	if _, err := nc.Write(b); err != nil {
		return domain.Reply{}, fmt.Errorf("relay: send to %s: %w", addr, err)
	}
	r := bufio.NewReader(nc)
	for range n {
		rep, err := readAny(r, 0)
		if err != nil {
			return domain.Reply{}, fmt.Errorf("relay: hello to %s: %w", addr, err)
		}
		if rep.IsError() {
			return rep, nil
		}
	}
	rep, err := readAny(r, 0)
	if err != nil {
		return domain.Reply{}, fmt.Errorf("relay: reply from %s: %w", addr, err)
	}
	return rep, nil
}

// readAny reads one RESP2 reply of any shape (arrays nested at most 8
// deep, bulk strings of at most 64 MiB).
func readAny(r *bufio.Reader, depth int) (domain.Reply, error) {
	line, err := readLine(r)
	if err != nil {
		return domain.Reply{}, err
	}
	if len(line) == 0 {
		return domain.Reply{}, errBadReply
	}
	body := line[1:]
	switch line[0] {
	case '+', '-', '$':
		if line[0] == '$' {
			b, ok, err := readBulk(r, body, 64<<20)
			if err != nil || !ok {
				return domain.NilReply, err
			}
			return domain.BulkReply(b), nil
		}
		if line[0] == '-' {
			return domain.ErrorReply(string(body)), nil
		}
		return domain.Reply{Kind: domain.ReplyStatus, Str: string(body)}, nil
	case ':':
		n, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil {
			return domain.Reply{}, errBadReply
		}
		return domain.IntReply(n), nil
	case '*':
		n, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil || n < -1 || n > 1<<20 || depth > 8 {
			return domain.Reply{}, errBadReply
		}
		if n == -1 {
			return domain.Reply{Kind: domain.ReplyNilArray}, nil
		}
		out := make([]domain.Reply, n)
		for i := range out {
			if out[i], err = readAny(r, depth+1); err != nil {
				return domain.Reply{}, err
			}
		}
		return domain.ArrayReply(out...), nil
	}
	return domain.Reply{}, errBadReply
}
