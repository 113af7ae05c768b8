package relay

import (
	"bufio"
	"errors"
	"io"
	"strconv"

	"github.com/seshat-kv/seshat/domain"
)

// The commands of the relay protocol (adapters/resp serves them).
const (
	// Hello is the command a relay connection sends first: the node that
	// receives it treats the connection's batches as relayed
	// (ports.DoOptions.Relayed), so it never relays them again.
	Hello = "SESHAT.RELAYED"
	// Do carries a relayed batch: its one argument is ports.EncodeRequests
	// of the batch, its reply a bulk string of ports.EncodeReplies (or an
	// error reply refusing the whole batch as malformed).
	Do = "SESHAT.DO"
)

// errBadReply: the leader's bytes are not a reply of the relay protocol.
var errBadReply = errors.New("relay: malformed reply")

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(b []byte, args ...[]byte) []byte {
	b = appendCommandHead(b, len(args))
	for _, a := range args {
		b = appendBulkHead(b, len(a))
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

// appendCommandHead appends the header of a RESP array of n elements.
func appendCommandHead(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// appendBulkHead appends the header of a bulk string of n bytes.
func appendBulkHead(b []byte, n int) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

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

// readBulk reads a bulk string's body after its header; nil, false for $-1.
func readBulk(r *bufio.Reader, header []byte, maxLen int64) ([]byte, bool, error) {
	n, err := strconv.ParseInt(string(header), 10, 64)
	if err != nil || n < -1 || n > maxLen {
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

// readReply reads one reply of the shapes the relay protocol uses: a
// status, an error or a bulk string of at most maxLen bytes.
func readReply(r *bufio.Reader, maxLen int64) (domain.Reply, error) {
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
		b, ok, err := readBulk(r, body, maxLen)
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
