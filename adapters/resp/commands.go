package resp

import (
	"fmt"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// relayHello is the command a relaying node sends first on its connection
// (app.RelayHello; this package cannot import app).
const relayHello = "seshat.relayed"

// arity is Redis's: n > 0 exactly n arguments (the name included), n < 0
// at least -n.
var arity = map[string]int{
	"get": 2, "set": -3, "del": -2, "exists": -2, "mget": -2, "mset": -3,
	"ping": -1, "echo": 2, "info": -1, "hello": -1, "client": -2,
	"command": -1, "config": -2, "select": 2, "quit": -1, relayHello: 1,
}

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

// unknownCommand is Redis 7's text: the name and up to 128 bytes of the
// arguments, each quoted and followed by a space.
func unknownCommand(args [][]byte) item {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		a = a[:min(len(a), 128-b.Len())]
		b.WriteString("'")
		b.Write(a)
		b.WriteString("' ")
	}
	name := args[0][:min(len(args[0]), 128)]
	return errorItem(oneLine(fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", name, b.String())))
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
	name := strings.ToLower(string(args[0]))
	a, ok := arity[name]
	if !ok {
		return unknownCommand(args), r, false
	}
	if (a > 0 && len(args) != a) || (a < 0 && len(args) < -a) {
		return wrongArgs(name), r, false
	}
	if len(args) > s.opts.MaxArgs {
		return errorItem(fmt.Sprintf("ERR too many arguments for '%s' command (at most %d)", name, s.opts.MaxArgs)), r, false
	}
	switch name {
	case "get":
		return s.keys(ports.ReqGet, args[1:])
	case "del":
		return s.keys(ports.ReqDel, args[1:])
	case "exists":
		return s.keys(ports.ReqExists, args[1:])
	case "mget":
		return s.keys(ports.ReqMGet, args[1:])
	case "set":
		return s.set(args)
	case "mset":
		if (len(args)-1)%2 != 0 {
			return wrongArgs(name), r, false
		}
		r = ports.Request{Kind: ports.ReqMSet}
		for i := 1; i < len(args); i += 2 {
			if e, bad := s.checkKV(args[i], args[i+1]); bad {
				return e, r, false
			}
			r.Keys = append(r.Keys, args[i])
			r.Values = append(r.Values, args[i+1])
		}
		return it, r, true
	case "ping":
		switch len(args) {
		case 1:
			return stringItem("PONG"), r, false
		case 2:
			msg := args[1]
			return item{req: -1, write: func(c redcon.Conn) { c.WriteBulk(msg) }}, r, false
		}
		return wrongArgs(name), r, false
	case "echo":
		msg := args[1]
		return item{req: -1, write: func(c redcon.Conn) { c.WriteBulk(msg) }}, r, false
	case "quit":
		return item{req: -1, quit: true}, r, false
	case "select":
		n, err := strconv.ParseInt(string(args[1]), 10, 64)
		switch {
		case err != nil:
			return errorItem("ERR value is not an integer or out of range"), r, false
		case n != 0:
			return errorItem("ERR DB index is out of range"), r, false
		}
		return okItem, r, false
	case relayHello:
		st.relayed = true
		return okItem, r, false
	case "hello":
		return s.hello(st, args), r, false
	case "client":
		return s.client(st, args), r, false
	case "command":
		return command(args), r, false
	case "config":
		return config(args), r, false
	case "info":
		sections := args[1:]
		return item{req: -1, write: func(c redcon.Conn) { c.WriteBulkString(s.info(sections)) }}, r, false
	}
	return unknownCommand(args), r, false
}

func (s *Server) checkKV(key, value []byte) (item, bool) {
	if len(key) > domain.MaxKeySize {
		return errorItem(fmt.Sprintf("ERR key is %d bytes, more than the %d seshat allows", len(key), domain.MaxKeySize)), true
	}
	if value != nil && len(value) > s.opts.MaxValueBytes {
		return errorItem("ERR string exceeds maximum allowed size (proto-max-bulk-len)"), true
	}
	return item{}, false
}

func (s *Server) keys(kind ports.RequestKind, keys [][]byte) (item, ports.Request, bool) {
	for _, k := range keys {
		if e, bad := s.checkKV(k, nil); bad {
			return e, ports.Request{}, false
		}
	}
	return item{req: -1}, ports.Request{Kind: kind, Keys: keys}, true
}

// set parses SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]
// as Redis does, and refuses the options Seshat cannot honour yet.
func (s *Server) set(args [][]byte) (item, ports.Request, bool) {
	var nx, xx, get, keepTTL bool
	expiry := ""
	for i := 3; i < len(args); i++ {
		opt := strings.ToUpper(string(args[i]))
		switch opt {
		case "NX":
			if xx {
				return errorItem("ERR syntax error"), ports.Request{}, false
			}
			nx = true
		case "XX":
			if nx {
				return errorItem("ERR syntax error"), ports.Request{}, false
			}
			xx = true
		case "GET":
			get = true
		case "KEEPTTL":
			if expiry != "" {
				return errorItem("ERR syntax error"), ports.Request{}, false
			}
			keepTTL = true
		case "EX", "PX", "EXAT", "PXAT":
			if expiry != "" || keepTTL || i+1 >= len(args) {
				return errorItem("ERR syntax error"), ports.Request{}, false
			}
			i++
			n, err := strconv.ParseInt(string(args[i]), 10, 64)
			if err != nil {
				return errorItem("ERR value is not an integer or out of range"), ports.Request{}, false
			}
			if n <= 0 {
				return errorItem("ERR invalid expire time in 'set' command"), ports.Request{}, false
			}
			expiry = opt
		default:
			return errorItem("ERR syntax error"), ports.Request{}, false
		}
	}
	var unsupported []string
	if nx {
		unsupported = append(unsupported, "NX")
	}
	if xx {
		unsupported = append(unsupported, "XX")
	}
	if get {
		unsupported = append(unsupported, "GET")
	}
	if expiry != "" {
		unsupported = append(unsupported, expiry)
	}
	if len(unsupported) > 0 {
		return errorItem(fmt.Sprintf("ERR SET option %s is not yet supported by seshat", strings.Join(unsupported, " "))), ports.Request{}, false
	}
	if e, bad := s.checkKV(args[1], args[2]); bad {
		return e, ports.Request{}, false
	}
	// KEEPTTL is a no-op: no key has a TTL.
	return item{req: -1}, ports.Request{Kind: ports.ReqSet, Keys: args[1:2], Values: args[2:3]}, true
}

// hello answers HELLO [protover [AUTH user pass] [SETNAME name]] for RESP2.
func (s *Server) hello(st *connState, args [][]byte) item {
	if len(args) >= 2 {
		v, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			return errorItem("ERR Protocol version is not an integer or out of range")
		}
		if v != 2 {
			return errorItem("NOPROTO unsupported protocol version")
		}
		for i := 2; i < len(args); i++ {
			switch strings.ToUpper(string(args[i])) {
			case "AUTH":
				if i+2 >= len(args) {
					return errorItem(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", args[i]))
				}
				return errorItem("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			case "SETNAME":
				if i+1 >= len(args) {
					return errorItem(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", args[i]))
				}
				i++
				if !validName(args[i]) {
					return errorItem("ERR Client names cannot contain spaces, newlines or special characters.")
				}
				st.name = string(args[i])
			default:
				return errorItem(oneLine(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", args[i])))
			}
		}
	}
	role := "replica"
	if s.kv.Status().Role == "leader" {
		role = "master"
	}
	id := st.id
	return item{req: -1, write: func(c redcon.Conn) {
		c.WriteArray(14)
		c.WriteBulkString("server")
		c.WriteBulkString("redis")
		c.WriteBulkString("version")
		c.WriteBulkString(RedisVersion)
		c.WriteBulkString("proto")
		c.WriteInt(2)
		c.WriteBulkString("id")
		c.WriteInt64(id)
		c.WriteBulkString("mode")
		c.WriteBulkString("standalone")
		c.WriteBulkString("role")
		c.WriteBulkString(role)
		c.WriteBulkString("modules")
		c.WriteArray(0)
	}}
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

func (s *Server) client(st *connState, args [][]byte) item {
	sub := strings.ToLower(string(args[1]))
	want := map[string]int{"setname": 3, "getname": 2, "id": 2, "setinfo": 4}
	n, ok := want[sub]
	if !ok {
		return unknownSubcommand(args[1], "CLIENT")
	}
	if len(args) != n {
		return wrongArgs("client|" + sub)
	}
	switch sub {
	case "setname":
		if !validName(args[2]) {
			return errorItem("ERR Client names cannot contain spaces, newlines or special characters.")
		}
		st.name = string(args[2])
		return okItem
	case "getname":
		name := st.name
		return item{req: -1, write: func(c redcon.Conn) {
			if name == "" {
				c.WriteNull()
			} else {
				c.WriteBulkString(name)
			}
		}}
	case "id":
		id := st.id
		return item{req: -1, write: func(c redcon.Conn) { c.WriteInt64(id) }}
	}
	// setinfo
	switch strings.ToLower(string(args[2])) {
	case "lib-name", "lib-ver":
		return okItem
	}
	return errorItem(oneLine(fmt.Sprintf("ERR Unrecognized option '%s'", args[2])))
}

func emptyArray(c redcon.Conn) { c.WriteArray(0) }

// command answers COMMAND enough for redis-cli and client libraries: the
// command table is not described (empty arrays).
func command(args [][]byte) item {
	if len(args) == 1 {
		return item{req: -1, write: emptyArray}
	}
	switch strings.ToLower(string(args[1])) {
	case "docs", "info", "list":
		return item{req: -1, write: emptyArray}
	case "count":
		if len(args) != 2 {
			return wrongArgs("command|count")
		}
		n := len(arity)
		return item{req: -1, write: func(c redcon.Conn) { c.WriteInt(n) }}
	}
	return unknownSubcommand(args[1], "COMMAND")
}

// configValues are the parameters CONFIG GET knows (those redis-benchmark
// asks for).
var configValues = [][2]string{{"save", ""}, {"appendonly", "no"}}

func config(args [][]byte) item {
	switch strings.ToLower(string(args[1])) {
	case "get":
		if len(args) < 3 {
			return wrongArgs("config|get")
		}
		var out []string
		for _, kv := range configValues {
			for _, p := range args[2:] {
				if ok, _ := path.Match(strings.ToLower(string(p)), kv[0]); ok {
					out = append(out, kv[0], kv[1])
					break
				}
			}
		}
		return item{req: -1, write: func(c redcon.Conn) {
			c.WriteArray(len(out))
			for _, v := range out {
				c.WriteBulkString(v)
			}
		}}
	case "resetstat":
		return okItem
	}
	return unknownSubcommand(args[1], "CONFIG")
}

// info renders INFO's sections in Redis's format.
func (s *Server) info(sections [][]byte) string {
	want := map[string]bool{}
	for _, sec := range sections {
		want[strings.ToLower(string(sec))] = true
	}
	all := len(want) == 0 || want["all"] || want["default"] || want["everything"]
	var b strings.Builder
	section := func(name string, fields [][2]string) {
		if !all && !want[strings.ToLower(name)] {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
		for _, f := range fields {
			b.WriteString(f[0] + ":" + f[1] + "\r\n")
		}
	}
	port := ""
	if s.ln != nil {
		if _, p, err := splitPort(s.ln.Addr().String()); err == nil {
			port = p
		}
	}
	up := time.Since(s.start)
	section("Server", [][2]string{
		{"redis_version", RedisVersion},
		{"seshat_version", s.opts.Version},
		{"redis_mode", "standalone"},
		{"os", runtime.GOOS},
		{"arch_bits", strconv.Itoa(strconv.IntSize)},
		{"go_version", runtime.Version()},
		{"process_id", strconv.Itoa(os.Getpid())},
		{"tcp_port", port},
		{"uptime_in_seconds", strconv.FormatInt(int64(up/time.Second), 10)},
		{"uptime_in_days", strconv.FormatInt(int64(up/(24*time.Hour)), 10)},
	})
	section("Clients", [][2]string{
		{"connected_clients", strconv.FormatInt(s.clients.Load(), 10)},
	})
	if all || want["replication"] {
		st := s.kv.Status()
		section("Replication", [][2]string{
			{"role", st.Role},
			{"node_id", u64(uint64(st.ID))},
			{"leader", u64(uint64(st.Leader))},
			{"leader_addr", st.LeaderAddr},
			{"term", u64(uint64(st.Term))},
			{"commit_index", u64(uint64(st.Commit))},
			{"applied_index", u64(uint64(st.Applied))},
			{"last_index", u64(uint64(st.LastIndex))},
			{"voters", ids(st.Membership.Voters)},
			{"learners", ids(st.Membership.Learners)},
		})
	}
	// The state machine does not count its keys yet: the section is empty
	// (as Redis's is for an empty keyspace).
	section("Keyspace", nil)
	return b.String()
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
