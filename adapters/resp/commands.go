package resp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

// relayHello and relayDo are the commands a relaying node sends
// (relay.Hello and relay.Do of adapters/relay, which this package may not
// import).
const (
	relayHello = "seshat.relayed"
	relayDo    = "seshat.do"
)

// arity of the commands the adapter answers itself, Redis's way: n > 0
// exactly n arguments (the name included), n < 0 at least -n. Data
// commands are keyspace's.
var arity = map[string]int{
	"ping": -1, "echo": 2, "info": -1, "hello": -1, "client": -2,
	"command": -1, "config": -2, "select": 2, "quit": -1,
	"multi": 1, "exec": 1, "discard": 1, "watch": -2, "unwatch": 1,
	"auth": -2, "reset": 1, "time": 1, "cluster": -2, "readonly": 1, "readwrite": 1,
	relayHello: 1, relayDo: 2, memberCommand: -2,
	"seshat.backup": 1,
	digestCmd:       1,
}

// noAuth are the commands a connection may send before AUTH.
// localNames interns the lowercase names of arity's commands, so that
// naming a command costs no allocation (see commandName).
var localNames = func() map[string]string {
	m := make(map[string]string, len(arity))
	for name := range arity {
		m[name] = name
	}
	return m
}()

// commandName returns the lowercase name of the command named raw whose
// spec (nil if none) keyspace.Lookup found: the spec's or an interned
// one, with no allocation, for every command the server knows.
func commandName(spec *keyspace.Spec, raw []byte) string {
	if spec != nil {
		return spec.Name
	}
	if len(raw) <= 32 {
		var buf [32]byte
		for i, c := range raw {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if name, ok := localNames[string(buf[:len(raw)])]; ok {
			return name
		}
	}
	return strings.ToLower(string(raw))
}

var noAuth = map[string]bool{"auth": true, "hello": true, "quit": true, "reset": true}

func errorItem(text string) item {
	return item{req: -1, write: func(c redcon.Conn) { c.WriteError(text) }}
}

func stringItem(s string) item {
	return item{req: -1, write: func(c redcon.Conn) { c.WriteString(s) }}
}

var okItem = stringItem("OK")

func wrongArgs(name string) item {
	return errorItem(fmt.Sprintf("ERR wrong number of arguments for '%s' command", name))
}

func unknownCommand(args [][]byte) item {
	return errorItem(keyspace.UnknownCommand(args).Str)
}

func unknownSubcommand(sub []byte, cmd string) item {
	return errorItem(oneLine(fmt.Sprintf("ERR unknown subcommand '%.128s'. Try %s HELP.", sub, cmd)))
}

// parse turns one command into a locally computed reply, or a KV request
// (isKV).
func (s *Server) parse(st *connState, args [][]byte) (it item, r ports.Request, isKV bool) {
	it.req = -1
	if len(args) == 0 {
		return errorItem("ERR empty command"), r, false
	}
	spec := keyspace.Lookup(args[0])
	name := commandName(spec, args[0])
	if spec != nil && spec.Flags&keyspace.Internal != 0 {
		spec = nil
	}
	// refuse answers an error that, inside MULTI, also dooms the EXEC.
	refuse := func(e item) (item, ports.Request, bool) {
		if st.multi {
			st.txErr = true
		}
		return e, r, false
	}
	a, local := arity[name]
	if spec == nil && !local {
		return refuse(unknownCommand(args))
	}
	if local && !((a > 0 && len(args) == a) || (a < 0 && len(args) >= -a)) ||
		spec != nil && !local && !spec.ArityOK(len(args)) {
		return refuse(wrongArgs(name))
	}
	if len(args) > s.opts.MaxArgs {
		return refuse(errorItem(fmt.Sprintf("ERR too many arguments for '%s' command (at most %d)", name, s.opts.MaxArgs)))
	}
	if !st.authed && !noAuth[name] {
		return refuse(errorItem("NOAUTH Authentication required."))
	}
	switch name {
	case "multi":
		if st.multi {
			return errorItem("ERR MULTI calls can not be nested"), r, false
		}
		st.multi, st.queued, st.txErr = true, nil, false
		st.txDB, st.txLocal, st.txCount, st.txSelect = st.db, nil, 0, -1
		return okItem, r, false
	case "exec":
		if !st.multi {
			return errorItem("ERR EXEC without MULTI"), r, false
		}
		queued, watches, aborted := st.queued, st.watches, st.txErr
		locals, count, sel := st.txLocal, st.txCount, st.txSelect
		st.multi, st.queued, st.txErr, st.watches, st.txLocal = false, nil, false, nil, nil
		if aborted {
			return errorItem("EXECABORT Transaction discarded because of previous errors."), r, false
		}
		req := ports.Request{IsTx: true, Tx: queued, Watch: watches}
		post := func(v domain.Reply) domain.Reply { return spliceLocal(v, locals, count) }
		if sel < 0 {
			it.post = post
			return it, req, true
		}
		// A queued SELECT moves the connection only if EXEC runs, which
		// the commands pipelined after it must know: run it alone.
		return item{req: -1, barrier: func(c redcon.Conn) { s.execSelect(c, st, req, post, sel) }}, r, false
	case "discard":
		if !st.multi {
			return errorItem("ERR DISCARD without MULTI"), r, false
		}
		st.multi, st.queued, st.txErr, st.watches = false, nil, false, nil
		return okItem, r, false
	case "watch":
		if st.multi {
			return errorItem("ERR WATCH inside MULTI is not allowed"), r, false
		}
		keys := args[1:]
		return item{req: -1, barrier: func(c redcon.Conn) { s.watch(c, st, keys) }}, r, false
	case "unwatch":
		if !st.multi {
			st.watches = nil
			return okItem, r, false
		}
	case "quit":
		return item{req: -1, quit: true}, r, false
	case "reset":
		return s.reset(st), r, false
	}
	if spec != nil && (st.multi || !local) {
		if e, bad := s.checkCall(spec, args); bad {
			return refuse(e)
		}
		call := domain.Call{DB: st.db, Args: args}
		if st.multi {
			// The queue outlives this batch and redcon reuses its buffers.
			call.DB, call.Args = st.txDB, cloneArgs(args)
			st.queued = append(st.queued, call)
			st.txCount++
			return stringItem("QUEUED"), r, false
		}
		if spec.Flags&keyspace.Blocking != 0 {
			return s.blockItem(st, call), r, false
		}
		return it, ports.Request{Call: call}, true
	}
	if st.multi {
		return s.queueLocal(st, name, args), r, false
	}
	switch name {
	case "ping":
		switch len(args) {
		case 1:
			return stringItem("PONG"), r, false
		case 2:
			msg := args[1]
			return item{req: -1, write: func(c redcon.Conn) { writeBulk(c, msg) }}, r, false
		}
		return wrongArgs(name), r, false
	case "echo":
		msg := args[1]
		return item{req: -1, write: func(c redcon.Conn) { writeBulk(c, msg) }}, r, false
	case "select":
		n, bad := s.dbIndex(args[1])
		if bad.Kind == domain.ReplyError {
			return refuse(errorItem(bad.Str))
		}
		st.db = n
		return okItem, r, false
	case relayHello:
		st.relayed = true
		return okItem, r, false
	case relayDo:
		// No clone: redcon gives each command read from a connection a
		// buffer of its own (Command.Raw), and a relayed payload may be
		// hundreds of MB.
		return item{req: -1, relay: args[1]}, r, false
	case "seshat.backup":
		return s.backupItem(), r, false
	case "hello":
		return s.hello(st, args), r, false
	case "auth":
		return s.auth(st, args), r, false
	case "time":
		return timeItem(), r, false
	case "client":
		return s.client(st, args), r, false
	case "command":
		return command(args), r, false
	case "config":
		return s.config(args), r, false
	case "cluster":
		return s.cluster(args), r, false
	case memberCommand:
		return s.member(st, args), r, false
	case "readonly", "readwrite":
		if !s.opts.Redirect {
			return errorItem("ERR This instance has cluster support disabled"), r, false
		}
		return okItem, r, false
	case "info":
		return valueItem(domain.Reply{Kind: domain.ReplyVerbatim, Bulk: []byte(s.info(args[1:]))}), r, false
	case digestCmd:
		return s.digest(), r, false
	}
	return unknownCommand(args), r, false
}

func cloneArgs(args [][]byte) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = bytes.Clone(a)
	}
	return out
}

// checkCall applies the size limits to a data command: keys up to
// domain.MaxKeySize, other arguments up to Options.MaxValueBytes.
func (s *Server) checkCall(spec *keyspace.Spec, args [][]byte) (item, bool) {
	first, last, step := spec.KeyRange(len(args))
	for i := first; i > 0 && i <= last; i += step {
		if k := args[i]; len(k) > domain.MaxKeySize {
			return errorItem(fmt.Sprintf("ERR key is %d bytes, more than the %d seshat allows", len(k), domain.MaxKeySize)), true
		}
	}
	for _, a := range args[1:] {
		if len(a) > s.opts.MaxValueBytes {
			return errorItem("ERR string exceeds maximum allowed size (proto-max-bulk-len)"), true
		}
	}
	return item{}, false
}

// relayed serves batches another node relayed, pipelined on one
// connection: each is decoded and checked, those that pass run together as
// one batch (one proposal for all their writes), and each is answered in
// one bulk string (see ports.EncodeRequests), in order.
func (s *Server) relayed(conn redcon.Conn, payloads [][]byte) {
	bad := make([]string, len(payloads))
	bounds := make([]int, len(payloads)+1)
	var all []ports.Request
	for i, p := range payloads {
		reqs, err := ports.DecodeRequests(p)
		if err == nil {
			err = s.checkRelayed(reqs)
		}
		if err != nil {
			bad[i] = ErrorText(err)
		} else {
			all = append(all, reqs...)
		}
		bounds[i+1] = len(all)
	}
	var replies []ports.Reply
	if len(all) > 0 {
		ctx, cancel := s.batchContext(time.Now(), s.batchTimeout(all))
		replies = s.kv.Do(ctx, all, ports.DoOptions{Relayed: true})
		cancel()
	}
	for i := range payloads {
		if bad[i] != "" {
			conn.WriteError(bad[i])
			continue
		}
		writeBulk(conn, ports.EncodeReplies(replies[bounds[i]:bounds[i+1]], ErrorText))
	}
}

var errBadRelayedCall = errors.New("relayed batch holds a bad call")

// checkRelayed refuses calls a client could not have sent (internal
// commands travel too: a follower relays its clients' WATCHes).
func (s *Server) checkRelayed(reqs []ports.Request) error {
	for _, r := range reqs {
		calls := r.Tx
		if !r.IsTx {
			calls = []domain.Call{r.Call}
		}
		for _, c := range calls {
			if keyspace.Lookup(c.Args[0]) == nil || c.DB < 0 || c.DB >= s.opts.Databases {
				return errBadRelayedCall
			}
		}
	}
	return nil
}

// validName is Redis's rule for client names: printable ASCII, no spaces.
func validName(b []byte) bool {
	for _, c := range b {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

func ids(v []domain.NodeID) string {
	s := make([]string, len(v))
	for i, id := range v {
		s[i] = u64(uint64(id))
	}
	return strings.Join(s, ",")
}

func splitPort(addr string) (string, string, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", fmt.Errorf("no port in %q", addr)
	}
	return addr[:i], addr[i+1:], nil
}

// queueLocal queues a connection command inside MULTI. PING, ECHO, TIME,
// INFO and SELECT are answered by this node when EXEC has run, their
// replies spliced into EXEC's among those of the data commands (which run
// as one log entry); other connection commands are refused, dooming the
// EXEC.
func (s *Server) queueLocal(st *connState, name string, args [][]byte) item {
	var reply func() domain.Reply
	switch name {
	case "ping":
		if len(args) > 2 {
			// PING's arity allows more; its own check runs at EXEC.
			reply = func() domain.Reply { return keyspace.WrongArity("ping") }
			break
		}
		msg := []byte(nil)
		if len(args) == 2 {
			msg = bytes.Clone(args[1])
		}
		reply = func() domain.Reply {
			if msg == nil {
				return domain.Reply{Kind: domain.ReplyStatus, Str: "PONG"}
			}
			return domain.BulkReply(msg)
		}
	case "echo":
		msg := bytes.Clone(args[1])
		reply = func() domain.Reply { return domain.BulkReply(msg) }
	case "time":
		reply = func() domain.Reply { return *timeItem().val }
	case "info":
		sections := cloneArgs(args[1:])
		reply = func() domain.Reply {
			return domain.Reply{Kind: domain.ReplyVerbatim, Bulk: []byte(s.info(sections))}
		}
	case "select":
		n, bad := s.dbIndex(args[1])
		if bad.Kind == domain.ReplyError {
			reply = func() domain.Reply { return bad }
		} else {
			st.txDB, st.txSelect = n, n
			reply = func() domain.Reply { return domain.OK }
		}
	default:
		// Seshat runs a transaction as one log entry of data commands.
		st.txErr = true
		return errorItem(fmt.Sprintf("ERR '%s' inside MULTI is not supported by seshat", name))
	}
	st.txLocal = append(st.txLocal, txLocal{at: st.txCount, reply: reply})
	st.txCount++
	return stringItem("QUEUED")
}

// spliceLocal puts the queued connection commands' replies into EXEC's
// reply v (the data commands' replies, in order), if EXEC ran.
func spliceLocal(v domain.Reply, locals []txLocal, count int) domain.Reply {
	if len(locals) == 0 || v.Kind != domain.ReplyArray || len(v.Array)+len(locals) != count {
		return v
	}
	out := make([]domain.Reply, 0, count)
	data := v.Array
	for pos, l := 0, 0; pos < count; pos++ {
		if l < len(locals) && locals[l].at == pos {
			out = append(out, locals[l].reply())
			l++
			continue
		}
		out = append(out, data[0])
		data = data[1:]
	}
	return domain.ArrayReply(out...)
}

// execSelect runs an EXEC that queued a SELECT on its own, and moves the
// connection to the selected database if it ran.
func (s *Server) execSelect(conn redcon.Conn, st *connState, req ports.Request, post func(domain.Reply) domain.Reply, db int) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.BatchTimeout)
	defer cancel()
	r := s.kv.Do(ctx, []ports.Request{req}, ports.DoOptions{Relayed: st.relayed})[0]
	if r.Err == nil {
		r.Value = post(r.Value)
		if r.Value.Kind == domain.ReplyArray {
			st.db = db
		}
	}
	writeReply(conn, st.resp3, r)
}

// dbIndex parses SELECT's argument as Redis does: an integer, within an
// int, naming one of the databases; else the error reply.
func (s *Server) dbIndex(arg []byte) (int, domain.Reply) {
	n, ok := keyspace.ParseInt(arg)
	switch {
	case !ok:
		return 0, keyspace.ErrNotInteger
	case n < math.MinInt32 || n > math.MaxInt32:
		return 0, domain.ErrorReply("ERR value is out of range, value must between -2147483648 and 2147483647")
	case n < 0 || n >= int64(s.opts.Databases):
		return 0, keyspace.ErrDBRange
	}
	return int(n), domain.Reply{}
}
