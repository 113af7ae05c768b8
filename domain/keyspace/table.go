package keyspace

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

// Flags describe a command, as Redis's command table does.
type Flags uint16

const (
	// Write: the command may change the keyspace; it goes through the log.
	Write Flags = 1 << iota
	// ReadOnly: the command only reads keys.
	ReadOnly
	// DenyOOM: the command may grow memory use.
	DenyOOM
	// Fast: the command runs in constant or logarithmic time.
	Fast
	// Internal: Seshat proposes the command itself (expiry); clients
	// cannot send it.
	Internal
	// Blocking: the command may block its client (BLPOP ...); the engine
	// runs its non-blocking form (blocking.go).
	Blocking
)

// Names returns the flags as Redis's COMMAND INFO words them.
func (f Flags) Names() []string {
	var out []string
	for _, x := range []struct {
		f    Flags
		name string
	}{{Write, "write"}, {ReadOnly, "readonly"}, {DenyOOM, "denyoom"}, {Fast, "fast"}, {Blocking, "blocking"}} {
		if f&x.f != 0 {
			out = append(out, x.name)
		}
	}
	return out
}

// Spec describes one data command.
type Spec struct {
	// Name is the lower-case command name.
	Name string
	// Arity is Redis's: n > 0 exactly n arguments (the name included),
	// n < 0 at least -n.
	Arity int
	Flags Flags
	// FirstKey, LastKey and Step locate the key arguments, as in Redis's
	// COMMAND INFO (LastKey -1: the last argument). FirstKey 0: no keys.
	FirstKey, LastKey, Step int
	// Group is Redis's command group ("string", "generic", ...).
	Group string
	run   func(c *ctx, args [][]byte) domain.Reply
}

// ArityOK reports whether n arguments (the name included) fit the arity.
func (s *Spec) ArityOK(n int) bool {
	if s.Arity >= 0 {
		return n == s.Arity
	}
	return n >= -s.Arity
}

// Keys returns the key arguments of args.
func (s *Spec) Keys(args [][]byte) [][]byte {
	first, last, step := s.KeyRange(len(args))
	if first == 0 {
		return nil
	}
	var keys [][]byte
	for i := first; i <= last; i += step {
		keys = append(keys, args[i])
	}
	return keys
}

// KeyRange returns where the keys are in a call of n arguments: args[i]
// for i from first to last by step; first is 0 if the call has none. It
// is Keys without the slice, for a caller that must not allocate.
func (s *Spec) KeyRange(n int) (first, last, step int) {
	if s.FirstKey <= 0 || s.FirstKey >= n {
		return 0, -1, 1
	}
	last = s.LastKey
	if last < 0 {
		last = n + last
	}
	return s.FirstKey, min(last, n-1), max(s.Step, 1)
}

var table = map[string]*Spec{}

func register(specs ...[]*Spec) {
	for _, group := range specs {
		for _, s := range group {
			if table[s.Name] != nil {
				panic("keyspace: command registered twice: " + s.Name)
			}
			table[s.Name] = s
		}
	}
}

func init() {
	register(stringCommands, keyCommands, expireCommands, watchCommands, hashCommands, setCommands, zsetCommands, listCommands, objectCommands, blockingCommands, onceCommands)
}

// Lookup returns the spec of the data command name (any case), or nil.
func Lookup(name []byte) *Spec {
	if len(name) > 32 {
		return nil
	}
	var buf [32]byte
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return table[string(buf[:len(name)])]
}

// Commands returns every data command's spec.
func Commands() []*Spec {
	out := make([]*Spec, 0, len(table))
	for _, s := range table {
		out = append(out, s)
	}
	return out
}

// WrongArity is Redis's arity error for the command name.
func WrongArity(name string) domain.Reply {
	return domain.ErrorReply(fmt.Sprintf("ERR wrong number of arguments for '%s' command", strings.ToLower(name)))
}

// UnknownCommand is Redis 7's text for an unknown command: the name and
// up to 128 bytes of the arguments, each quoted and followed by a space.
// As Redis prints them with C's %s, each stops at its first NUL byte;
// other bytes pass as they are, CR and LF become spaces.
func UnknownCommand(args [][]byte) domain.Reply {
	cstr := func(b []byte, limit int) []byte {
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return b[:min(len(b), max(limit, 0))]
	}
	var list []byte
	for _, a := range args[1:] {
		if len(list) >= 128 {
			break
		}
		list = append(list, '\'')
		list = append(list, cstr(a, 128-len(list)+1)...)
		list = append(list, "' "...)
	}
	msg := []byte("ERR unknown command '")
	msg = append(msg, cstr(args[0], 128)...)
	msg = append(msg, "', with args beginning with: "...)
	msg = append(msg, list...)
	return domain.ErrorReply(OneLine(string(msg)))
}

// OneLine keeps an error text on one line, as RESP requires: CR and LF
// become spaces, other bytes stay as they are.
func OneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}

// Common error replies, worded as Redis 7 words them.
var (
	ErrSyntax      = domain.ErrorReply("ERR syntax error")
	ErrNotInteger  = domain.ErrorReply("ERR value is not an integer or out of range")
	ErrNotFloat    = domain.ErrorReply("ERR value is not a valid float")
	ErrOverflow    = domain.ErrorReply("ERR increment or decrement would overflow")
	ErrNaNInf      = domain.ErrorReply("ERR increment would produce NaN or Infinity")
	ErrTooBig      = domain.ErrorReply("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
	ErrNoSuchKey   = domain.ErrorReply("ERR no such key")
	ErrDBRange     = domain.ErrorReply("ERR DB index is out of range")
	ErrSameObjects = domain.ErrorReply("ERR source and destination objects are the same")
)
