package resp

import (
	"crypto/subtle"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
)

// clientView is what CLIENT LIST shows of a connection; the connection
// publishes it after each batch, for other connections to read.
type clientView struct {
	name, cmd, libName, libVer string
	db                         int
	resp3, multi               bool
	queued                     int
	// lastAt (Unix ns) is the time of the last command: the one field
	// that changes with every batch, so it is updated in place and an
	// otherwise unchanged view is not published anew (no allocation per
	// batch).
	lastAt atomic.Int64
}

func (st *connState) snapshot() *clientView {
	v := &clientView{name: st.name, cmd: st.lastCmd, libName: st.libName, libVer: st.libVer,
		db: st.db, resp3: st.resp3, multi: st.multi, queued: len(st.queued)}
	v.lastAt.Store(st.lastAt.UnixNano())
	return v
}

// shows reports whether v shows st as it is, but for lastAt.
func (v *clientView) shows(st *connState) bool {
	return v.name == st.name && v.cmd == st.lastCmd && v.libName == st.libName && v.libVer == st.libVer &&
		v.db == st.db && v.resp3 == st.resp3 && v.multi == st.multi && v.queued == len(st.queued)
}

func (st *connState) publish() {
	if v := st.view.Load(); v != nil && v.shows(st) {
		v.lastAt.Store(st.lastAt.UnixNano())
		return
	}
	st.view.Store(st.snapshot())
}

// register makes conn's state and lists it among the live connections.
func (s *Server) register(conn redcon.Conn) *connState {
	now := time.Now()
	st := &connState{id: s.nextID.Add(1), conn: conn, addr: conn.RemoteAddr(), fd: -1,
		created: now, lastAt: now, lastCmd: "NULL", authed: s.opts.RequirePass == ""}
	if nc := conn.NetConn(); nc != nil {
		st.laddr = nc.LocalAddr().String()
		if sc, ok := nc.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				_ = raw.Control(func(fd uintptr) { st.fd = int(fd) })
			}
		}
	}
	st.publish()
	conn.SetContext(st)
	s.mu.Lock()
	s.conns[st.id] = st
	s.mu.Unlock()
	return st
}

// count records a command for INFO (stats, commandstats) and CLIENT LIST,
// and returns its counters (nil: not in the table).
func (s *Server) count(st *connState, args [][]byte) *cmdStat {
	s.totalCmds.Add(1)
	st.lastAt = time.Now()
	if len(args) == 0 || len(args[0]) > 32 {
		s.countUnknown()
		return nil
	}
	var buf [32]byte
	name := buf[:len(args[0])]
	for i, c := range args[0] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		name[i] = c
	}
	stat := s.cmdStats[string(name)]
	if stat == nil {
		s.countUnknown()
		return nil
	}
	stat.calls.Add(1)
	st.lastCmd = stat.name
	if stat.container && len(args) > 1 {
		st.lastCmd = stat.name + "|" + strings.ToLower(string(args[1]))
	}
	return stat
}

// cmdStat counts the calls of one command.
type cmdStat struct {
	name      string
	container bool
	calls     atomic.Int64
	lat       *latencyHist // stats.go
}

func valueItem(v domain.Reply) item { return item{req: -1, val: &v} }

func nilItem() item { return valueItem(domain.NilReply) }

func bulkItem(s string) item { return valueItem(domain.StringReply(s)) }

func statusReply(s string) domain.Reply { return domain.Reply{Kind: domain.ReplyStatus, Str: s} }

func mapReply(kv ...domain.Reply) domain.Reply {
	if kv == nil {
		kv = []domain.Reply{}
	}
	return domain.Reply{Kind: domain.ReplyMap, Array: kv}
}

// passwordOK compares pass with the configured password in constant time.
func (s *Server) passwordOK(user string, pass []byte) bool {
	userOK := user == "default"
	want := []byte(s.opts.RequirePass)
	if s.opts.RequirePass == "" {
		// Redis's default user has nopass: any password is accepted.
		return userOK
	}
	return subtle.ConstantTimeCompare(pass, want) == 1 && userOK
}

const wrongPass = "WRONGPASS invalid username-password pair or user is disabled."

// auth answers AUTH [user] pass.
func (s *Server) auth(st *connState, args [][]byte) item {
	switch len(args) {
	case 2:
		if s.opts.RequirePass == "" {
			return errorItem("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		}
		if !s.passwordOK("default", args[1]) {
			return errorItem(wrongPass)
		}
	case 3:
		if !s.passwordOK(string(args[1]), args[2]) {
			return errorItem(wrongPass)
		}
	default:
		return errorItem("ERR syntax error")
	}
	st.authed = true
	return okItem
}

// hello answers HELLO [protover [AUTH user pass] [SETNAME name]].
func (s *Server) hello(st *connState, args [][]byte) item {
	ver := 0
	var user, pass, name []byte
	if len(args) >= 2 {
		v, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			return errorItem("ERR Protocol version is not an integer or out of range")
		}
		if v < 2 || v > 3 {
			return errorItem("NOPROTO unsupported protocol version")
		}
		ver = int(v)
		for i := 2; i < len(args); i++ {
			more := len(args) - 1 - i
			switch opt := strings.ToUpper(string(args[i])); {
			case opt == "AUTH" && more >= 2:
				user, pass = args[i+1], args[i+2]
				i += 2
			case opt == "SETNAME" && more >= 1:
				if !validName(args[i+1]) {
					return errorItem("ERR Client names cannot contain spaces, newlines or special characters.")
				}
				name = args[i+1]
				i++
			default:
				return errorItem(oneLine(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", args[i])))
			}
		}
	}
	if pass != nil {
		if !s.passwordOK(string(user), pass) {
			return errorItem(wrongPass)
		}
		st.authed = true
	}
	if !st.authed {
		return errorItem("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	}
	if name != nil {
		st.name = string(name)
	}
	if ver != 0 {
		st.resp3 = ver == 3
	}
	proto := int64(2)
	if st.resp3 {
		proto = 3
	}
	return valueItem(mapReply(
		domain.StringReply("server"), domain.StringReply("redis"),
		domain.StringReply("version"), domain.StringReply(RedisVersion),
		domain.StringReply("proto"), domain.IntReply(proto),
		domain.StringReply("id"), domain.IntReply(st.id),
		domain.StringReply("mode"), domain.StringReply(s.mode()),
		domain.StringReply("role"), domain.StringReply(s.role()),
		domain.StringReply("modules"), domain.EmptyArray,
	))
}

// mode is the server mode HELLO and INFO report: "cluster" in redirect
// mode, where the server describes itself as a cluster.
func (s *Server) mode() string {
	if s.opts.Redirect {
		return "cluster"
	}
	return "standalone"
}

// role is Redis's role word for this node: master on the Raft leader.
func (s *Server) role() string {
	if s.kv.Status().Role == "leader" {
		return "master"
	}
	return "replica"
}

// reset answers RESET: the connection as it was on accept.
func (s *Server) reset(st *connState) item {
	st.multi, st.queued, st.txErr, st.watches = false, nil, false, nil
	st.resp3, st.db, st.name = false, 0, ""
	st.authed = s.opts.RequirePass == ""
	return stringItem("RESET")
}

func timeItem() item {
	now := time.Now()
	return valueItem(domain.ArrayReply(
		domain.StringReply(strconv.FormatInt(now.Unix(), 10)),
		domain.StringReply(strconv.FormatInt(int64(now.Nanosecond()/1000), 10)),
	))
}

// clientHelp is Seshat's own summary of CLIENT's subcommands.
var clientHelp = []string{
	"CLIENT <subcommand> [<arg> ...], where <subcommand> is one of:",
	"GETNAME | SETNAME <name>",
	"    Read or give this connection's name.",
	"ID | INFO",
	"    This connection's number, or its line of CLIENT LIST.",
	"LIST [TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID <id> ...]",
	"    One line per open connection of this node.",
	"KILL <ip:port> | KILL [ID <id>] [ADDR <ip:port>] [LADDR <ip:port>] [USER <name>] [TYPE <type>] [SKIPME YES|NO] [MAXAGE <seconds>]",
	"    Close the connections that match every filter given.",
	"UNBLOCK <id> [TIMEOUT|ERROR]",
	"    Answer a client blocked in a blocking pop as a timeout, or with an error.",
	"SETINFO LIB-NAME|LIB-VER <value>",
	"    Record the client library's name or version.",
	"NO-EVICT ON|OFF | NO-TOUCH ON|OFF",
	"    Accepted for compatibility; Seshat evicts nothing.",
	"HELP",
	"    This text.",
}

func helpItem(lines []string) item {
	out := make([]domain.Reply, len(lines))
	for i, l := range lines {
		out[i] = statusReply(l)
	}
	return valueItem(domain.ArrayReply(out...))
}

func (s *Server) client(st *connState, args [][]byte) item {
	sub := strings.ToLower(string(args[1]))
	want := map[string]int{"setname": 3, "getname": 2, "id": 2, "setinfo": 4, "info": 2, "list": -2,
		"kill": -3, "no-evict": 3, "no-touch": 3, "help": 2, "unblock": -3}
	n, ok := want[sub]
	if !ok {
		return unknownSubcommand(args[1], "CLIENT")
	}
	if n > 0 && len(args) != n || n < 0 && len(args) < -n {
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
		if st.name == "" {
			return nilItem()
		}
		return bulkItem(st.name)
	case "id":
		return valueItem(domain.IntReply(st.id))
	case "info":
		return valueItem(domain.Reply{Kind: domain.ReplyVerbatim, Bulk: []byte(s.clientLine(st, st.snapshot()))})
	case "list":
		return s.clientList(st, args[2:])
	case "kill":
		return s.clientKill(st, args[2:])
	case "unblock":
		return s.clientUnblock(args[2:])
	case "no-evict", "no-touch":
		switch strings.ToLower(string(args[2])) {
		case "on", "off":
			return okItem
		}
		return errorItem("ERR syntax error")
	case "help":
		return helpItem(clientHelp)
	}
	// setinfo
	opt := strings.ToLower(string(args[2]))
	if opt != "lib-name" && opt != "lib-ver" {
		return errorItem(oneLine(fmt.Sprintf("ERR Unrecognized option '%s'", args[2])))
	}
	if !validName(args[3]) {
		return errorItem(fmt.Sprintf("ERR %s cannot contain spaces, newlines or special characters.", opt))
	}
	if opt == "lib-name" {
		st.libName = string(args[3])
	} else {
		st.libVer = string(args[3])
	}
	return okItem
}

// others returns the live connections but st, in id order.
func (s *Server) others() map[int64]*connState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64]*connState, len(s.conns))
	for id, c := range s.conns {
		out[id] = c
	}
	return out
}

// clientLine renders one connection as CLIENT LIST does (Redis 7.2).
func (s *Server) clientLine(c *connState, v *clientView) string {
	now := time.Now()
	flags, multi := "N", -1
	if v.multi {
		flags, multi = "x", v.queued
	}
	resp := 2
	if v.resp3 {
		resp = 3
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=%d sub=0 psub=0 ssub=0 multi=%d qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s lib-ver=%s\n",
		c.id, c.addr, c.laddr, c.fd, v.name, int64(now.Sub(c.created)/time.Second), int64(now.Sub(time.Unix(0, v.lastAt.Load()))/time.Second),
		flags, v.db, multi, v.cmd, resp, v.libName, v.libVer)
}

func (s *Server) clientList(st *connState, opts [][]byte) item {
	var ids map[int64]bool
	normal := true
	for i := 0; i < len(opts); i++ {
		switch strings.ToLower(string(opts[i])) {
		case "type":
			if i+1 >= len(opts) {
				return errorItem("ERR syntax error")
			}
			i++
			switch t := strings.ToLower(string(opts[i])); t {
			case "normal":
			case "master", "replica", "slave", "pubsub":
				normal = false
			default:
				return errorItem(oneLine(fmt.Sprintf("ERR Unknown client type '%s'", opts[i])))
			}
		case "id":
			if i+1 >= len(opts) {
				return errorItem("ERR syntax error")
			}
			ids = map[int64]bool{}
			for i++; i < len(opts); i++ {
				id, err := strconv.ParseInt(string(opts[i]), 10, 64)
				if err != nil || id <= 0 {
					return errorItem("ERR Invalid client ID")
				}
				ids[id] = true
			}
		default:
			return errorItem("ERR syntax error")
		}
	}
	var b strings.Builder
	if normal {
		conns := s.others()
		order := make([]int64, 0, len(conns))
		for id := range conns {
			order = append(order, id)
		}
		sortInt64(order)
		for _, id := range order {
			if ids != nil && !ids[id] {
				continue
			}
			c := conns[id]
			v := c.view.Load()
			if c == st {
				v = st.snapshot()
			}
			b.WriteString(s.clientLine(c, v))
		}
	}
	return valueItem(domain.Reply{Kind: domain.ReplyVerbatim, Bulk: []byte(b.String())})
}

func sortInt64(v []int64) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// clientKill answers CLIENT KILL addr (the old form) and CLIENT KILL
// <filter> <value> ...
func (s *Server) clientKill(st *connState, opts [][]byte) item {
	conns := s.others()
	if len(opts) == 1 {
		addr := string(opts[0])
		for _, c := range conns {
			if c.addr == addr {
				if c == st {
					return item{req: -1, quit: true, write: func(conn redcon.Conn) { conn.WriteString("OK") }}
				}
				closeConn(c)
				return okItem
			}
		}
		return errorItem("ERR No such client")
	}
	if len(opts)%2 != 0 {
		return errorItem("ERR syntax error")
	}
	var (
		id          int64
		addr, laddr string
		skipMe      = true
		maxAge      int64
		none        bool
	)
	for i := 0; i < len(opts); i += 2 {
		val := string(opts[i+1])
		switch strings.ToLower(string(opts[i])) {
		case "id":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n <= 0 {
				return errorItem("ERR client-id should be greater than 0")
			}
			id = n
		case "addr":
			addr = val
		case "laddr":
			laddr = val
		case "type":
			switch strings.ToLower(val) {
			case "normal":
			case "master", "replica", "slave", "pubsub":
				none = true
			default:
				return errorItem(oneLine(fmt.Sprintf("ERR Unknown client type '%s'", val)))
			}
		case "user":
			if val != "default" {
				return errorItem(oneLine(fmt.Sprintf("ERR No such user '%s'", val)))
			}
		case "skipme":
			switch strings.ToLower(val) {
			case "yes":
				skipMe = true
			case "no":
				skipMe = false
			default:
				return errorItem("ERR syntax error")
			}
		case "maxage":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return errorItem("ERR value is not an integer or out of range")
			}
			maxAge = n
		default:
			return errorItem("ERR syntax error")
		}
	}
	killed, self := int64(0), false
	now := time.Now()
	for _, c := range conns {
		switch {
		case none,
			id != 0 && c.id != id,
			addr != "" && c.addr != addr,
			laddr != "" && c.laddr != laddr,
			maxAge != 0 && int64(now.Sub(c.created)/time.Second) < maxAge,
			c == st && skipMe:
			continue
		}
		killed++
		if c == st {
			self = true
			continue
		}
		closeConn(c)
	}
	if self {
		return item{req: -1, quit: true, write: func(conn redcon.Conn) { conn.WriteInt64(killed) }}
	}
	return valueItem(domain.IntReply(killed))
}

// closeConn closes another connection's socket; its own goroutine then
// sees the error and cleans up.
func closeConn(c *connState) {
	if nc := c.conn.NetConn(); nc != nil {
		_ = nc.Close()
	}
}

// clusterSlotsAddr returns the host and port of the leader, or of this
// node when the leader is unknown.
func (s *Server) leaderHostPort() (string, int, string) {
	st := s.kv.Status()
	addr := st.LeaderAddr
	id := st.Leader
	if addr == "" && s.ln != nil {
		addr, id = s.ln.Addr().String(), st.ID
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, nodeName(id)
	}
	port, _ := strconv.Atoi(p)
	return host, port, nodeName(id)
}

// nodeName is a 40-character cluster node name for a Raft node id.
func nodeName(id domain.NodeID) string {
	return fmt.Sprintf("%040x", uint64(id))
}

func (s *Server) myID() string { return nodeName(s.kv.Status().ID) }

// cluster answers CLUSTER in redirect mode: one master, the leader,
// holding every slot.
func (s *Server) cluster(args [][]byte) item {
	if !s.opts.Redirect {
		return errorItem("ERR This instance has cluster support disabled")
	}
	sub := strings.ToLower(string(args[1]))
	host, port, leader := s.leaderHostPort()
	me := s.myID()
	switch sub {
	case "slots":
		return valueItem(domain.ArrayReply(domain.ArrayReply(
			domain.IntReply(0), domain.IntReply(16383),
			domain.ArrayReply(domain.StringReply(host), domain.IntReply(int64(port)), domain.StringReply(leader), domain.EmptyArray),
		)))
	case "shards":
		node := mapReply(
			domain.StringReply("id"), domain.StringReply(leader),
			domain.StringReply("port"), domain.IntReply(int64(port)),
			domain.StringReply("ip"), domain.StringReply(host),
			domain.StringReply("endpoint"), domain.StringReply(host),
			domain.StringReply("role"), domain.StringReply("master"),
			domain.StringReply("replication-offset"), domain.IntReply(int64(s.kv.Status().Applied)),
			domain.StringReply("health"), domain.StringReply("online"),
		)
		return valueItem(domain.ArrayReply(mapReply(
			domain.StringReply("slots"), domain.ArrayReply(domain.IntReply(0), domain.IntReply(16383)),
			domain.StringReply("nodes"), domain.ArrayReply(append([]domain.Reply{node}, s.replicaShards(leader)...)...),
		)))
	case "nodes":
		flags := "master"
		if leader == me {
			flags = "myself,master"
		}
		line := fmt.Sprintf("%s %s:%d@%d %s - 0 0 %d connected 0-16383\n", leader, host, port, port+10000, flags, s.kv.Status().Term)
		line += s.replicaLines(leader, me, s.kv.Status().Term)
		return valueItem(domain.Reply{Kind: domain.ReplyVerbatim, Bulk: []byte(line)})
	case "info":
		st := s.kv.Status()
		state := "ok"
		if st.LeaderAddr == "" {
			state = "fail"
		}
		text := fmt.Sprintf("cluster_enabled:1\r\ncluster_state:%s\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:1\r\ncluster_size:1\r\ncluster_current_epoch:%d\r\ncluster_my_epoch:%d\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
			state, st.Term, st.Term)
		return valueItem(domain.Reply{Kind: domain.ReplyVerbatim, Bulk: []byte(text)})
	case "myid":
		return bulkItem(me)
	case "keyslot":
		if len(args) != 3 {
			return wrongArgs("cluster|keyslot")
		}
		return valueItem(domain.IntReply(int64(keySlot(args[2]))))
	}
	return unknownSubcommand(args[1], "CLUSTER")
}

// keySlot is Redis Cluster's hash slot of key (CRC16 of the hash tag).
func keySlot(key []byte) int {
	if i := indexByte(key, '{'); i >= 0 {
		if j := indexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for _, b := range key {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & 16383
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
