package resp

import (
	"fmt"
	"sort"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

// COMMAND DOCS.
//
// Every command Seshat answers has a docEntry: a one-line summary written
// for Seshat, the Redis version that introduced the command, and its
// syntax in a compact notation that parseSyntax turns into the "arguments"
// trees of Redis 7's COMMAND DOCS reply (redis-cli builds its input hints
// from them).
//
// The notation:
//
//	word          a parameter; its type is inferred from the name
//	              (paramTypes) or given as word:type, type one of key,
//	              string, integer, double, pattern, unix-time
//	WORD          a literal token (upper case); followed by a parameter or
//	              a ( ) group, it is that argument's token, else it stands
//	              alone (a pure token)
//	[ ... ]       optional
//	( ... )       grouping
//	a | b         one of the alternatives (inside [ ] or ( ))
//	x [x ...]     x repeated: x is one or more items, the repeated ones
//	              written out again; a repeated token gives multiple_token
//
// A group holding several arguments is a block; a block starting with a
// token followed by two or more further items takes that token.

// docEntry documents one command or subcommand.
type docEntry struct {
	summary string
	since   string
	syntax  string
	// subs documents the subcommands Seshat implements, by name.
	subs map[string]docEntry
}

// docTable documents every command in commandTable.
var docTable = withCollectionDocs(map[string]docEntry{
	// Strings.
	"get":         {summary: "Replies with the string held at a key, or nil if the key is absent.", since: "1.0.0", syntax: "key"},
	"set":         {summary: "Stores a string under a key; may be made conditional, given an expiry, or asked for the replaced string.", since: "1.0.0", syntax: "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]"},
	"mget":        {summary: "Replies with the strings held at each of the keys, nil for the absent ones.", since: "1.0.0", syntax: "key [key ...]"},
	"mset":        {summary: "Stores every given key and string pair in one step.", since: "1.0.1", syntax: "key value [key value ...]"},
	"msetnx":      {summary: "Stores every given key and string pair, but only if none of the keys is present yet.", since: "1.0.1", syntax: "key value [key value ...]"},
	"setnx":       {summary: "Stores a string under a key only when the key is absent; replies 1 if it did.", since: "1.0.0", syntax: "key value"},
	"setex":       {summary: "Stores a string under a key that expires after a number of seconds.", since: "2.0.0", syntax: "key seconds value"},
	"psetex":      {summary: "Stores a string under a key that expires after a number of milliseconds.", since: "2.6.0", syntax: "key milliseconds value"},
	"getset":      {summary: "Stores a new string under a key and replies with the one it replaced.", since: "1.0.0", syntax: "key value"},
	"getdel":      {summary: "Replies with a key's string and removes the key.", since: "6.2.0", syntax: "key"},
	"getex":       {summary: "Replies with a key's string, optionally giving it a new expiry or dropping its expiry.", since: "6.2.0", syntax: "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]"},
	"append":      {summary: "Adds bytes at the end of a key's string (an absent key starts empty); replies with the new length.", since: "2.0.0", syntax: "key value"},
	"strlen":      {summary: "Replies with how many bytes a key's string has; 0 for an absent key.", since: "2.2.0", syntax: "key"},
	"getrange":    {summary: "Replies with the bytes of a key's string from one offset to another, both included; negative offsets count back from the end.", since: "2.4.0", syntax: "key start end"},
	"substr":      {summary: "The older name of GETRANGE, answered the same way.", since: "1.0.0", syntax: "key start end"},
	"setrange":    {summary: "Overwrites a key's string from an offset on, zero-filling any gap; replies with the new length.", since: "2.2.0", syntax: "key offset value"},
	"incr":        {summary: "Adds 1 to the integer a key holds (absent counts as 0) and replies with the result.", since: "1.0.0", syntax: "key"},
	"decr":        {summary: "Takes 1 from the integer a key holds (absent counts as 0) and replies with the result.", since: "1.0.0", syntax: "key"},
	"incrby":      {summary: "Adds an integer to the integer a key holds (absent counts as 0) and replies with the result.", since: "1.0.0", syntax: "key increment"},
	"decrby":      {summary: "Takes an integer from the integer a key holds (absent counts as 0) and replies with the result.", since: "1.0.0", syntax: "key decrement"},
	"incrbyfloat": {summary: "Adds a decimal number to the number a key holds, keeping the sum as a string, and replies with it.", since: "2.6.0", syntax: "key increment:double"},
	"setbit":      {summary: "Sets one bit of a key's string to 0 or 1, growing the string as needed; replies with the bit's former value.", since: "2.2.0", syntax: "key offset value:integer"},
	"getbit":      {summary: "Replies with one bit of a key's string; bits past the end read as 0.", since: "2.2.0", syntax: "key offset"},
	"bitcount":    {summary: "Counts the bits set to 1 in a key's string, over all of it or a byte or bit range.", since: "2.6.0", syntax: "key [start end [BYTE | BIT]]"},
	"bitpos":      {summary: "Replies with the position of the first 0 or 1 bit of a key's string, over all of it or a range.", since: "2.8.7", syntax: "key bit [start [end [BYTE | BIT]]]"},

	// Keys and expiry.
	"del":         {summary: "Removes the keys and replies with how many of them were present.", since: "1.0.0", syntax: "key [key ...]"},
	"unlink":      {summary: "Removes the keys like DEL (Seshat frees memory the same way for both).", since: "4.0.0", syntax: "key [key ...]"},
	"exists":      {summary: "Replies with how many of the keys are present, counting a repeated key each time.", since: "1.0.0", syntax: "key [key ...]"},
	"touch":       {summary: "Replies with how many of the keys are present; Seshat records no access times.", since: "3.2.1", syntax: "key [key ...]"},
	"type":        {summary: "Names the kind of value a key holds, or replies none.", since: "1.0.0", syntax: "key"},
	"rename":      {summary: "Gives a key's value and expiry a new name, overwriting whatever had that name.", since: "1.0.0", syntax: "key newkey:key"},
	"renamenx":    {summary: "Gives a key's value and expiry a new name, unless that name is taken.", since: "1.0.0", syntax: "key newkey:key"},
	"copy":        {summary: "Duplicates a key's value and expiry under a second name, possibly in another database.", since: "6.2.0", syntax: "source:key destination:key [DB destination-db] [REPLACE]"},
	"move":        {summary: "Shifts a key into another database, unless a key of that name is there already.", since: "1.0.0", syntax: "key db"},
	"keys":        {summary: "Lists all keys of the current database that fit a glob pattern.", since: "1.0.0", syntax: "pattern"},
	"scan":        {summary: "Visits the current database's keys a batch per call, resuming from a cursor.", since: "2.8.0", syntax: "cursor [MATCH pattern] [COUNT count] [TYPE type]"},
	"randomkey":   {summary: "Replies with some key of the current database chosen at random, or nil if there is none.", since: "1.0.0"},
	"dbsize":      {summary: "Replies with the key count of the current database.", since: "1.0.0"},
	"flushdb":     {summary: "Empties the current database.", since: "1.0.0", syntax: "[ASYNC | SYNC]"},
	"flushall":    {summary: "Empties every database.", since: "1.0.0", syntax: "[ASYNC | SYNC]"},
	"swapdb":      {summary: "Trades the contents of two databases.", since: "4.0.0", syntax: "index1 index2"},
	"expire":      {summary: "Sets a key to expire a number of seconds from now; NX, XX, GT or LT limit when that applies.", since: "1.0.0", syntax: "key seconds [NX | XX | GT | LT]"},
	"pexpire":     {summary: "Sets a key to expire a number of milliseconds from now; NX, XX, GT or LT limit when that applies.", since: "2.6.0", syntax: "key milliseconds [NX | XX | GT | LT]"},
	"expireat":    {summary: "Sets a key to expire at a Unix time given in seconds; NX, XX, GT or LT limit when that applies.", since: "1.2.0", syntax: "key unix-time-seconds [NX | XX | GT | LT]"},
	"pexpireat":   {summary: "Sets a key to expire at a Unix time given in milliseconds; NX, XX, GT or LT limit when that applies.", since: "2.6.0", syntax: "key unix-time-milliseconds [NX | XX | GT | LT]"},
	"ttl":         {summary: "Replies with the seconds a key has left; -1 if it never expires, -2 if it is absent.", since: "1.0.0", syntax: "key"},
	"pttl":        {summary: "Replies with the milliseconds a key has left; -1 if it never expires, -2 if it is absent.", since: "2.6.0", syntax: "key"},
	"expiretime":  {summary: "Replies with the Unix time in seconds when a key expires; -1 if never, -2 if it is absent.", since: "7.0.0", syntax: "key"},
	"pexpiretime": {summary: "Replies with the Unix time in milliseconds when a key expires; -1 if never, -2 if it is absent.", since: "7.0.0", syntax: "key"},
	"persist":     {summary: "Takes a key's expiry away so the key stays until deleted.", since: "2.2.0", syntax: "key"},

	// Transactions.
	"multi":   {summary: "Begins a transaction: data commands are queued until EXEC.", since: "1.2.0"},
	"exec":    {summary: "Applies the queued commands atomically, as one Raft log entry, and replies with their results.", since: "1.2.0"},
	"discard": {summary: "Throws away the queued commands and ends the transaction.", since: "2.0.0"},
	"watch":   {summary: "Makes the next EXEC fail if any of these keys changes before it.", since: "2.2.0", syntax: "key [key ...]"},
	"unwatch": {summary: "Drops every key this connection watches.", since: "2.2.0"},

	// Connection and server.
	"auth":      {summary: "Logs the connection in with a password, optionally naming the user.", since: "1.0.0", syntax: "[username] password"},
	"hello":     {summary: "Chooses RESP2 or RESP3, optionally logging in and naming the connection, and replies with facts about the server.", since: "6.0.0", syntax: "[protover [AUTH username password] [SETNAME clientname]]"},
	"ping":      {summary: "Replies PONG, or sends the message back.", since: "1.0.0", syntax: "[message]"},
	"echo":      {summary: "Sends the message back unchanged.", since: "1.0.0", syntax: "message"},
	"select":    {summary: "Makes another numbered database the connection's current one.", since: "1.0.0", syntax: "index"},
	"quit":      {summary: "Replies OK, then closes the connection.", since: "1.0.0"},
	"reset":     {summary: "Puts the connection back as it was when opened: no transaction or watches, database 0, RESP2.", since: "6.2.0"},
	"time":      {summary: "Replies with this node's clock as Unix seconds plus microseconds.", since: "2.6.0"},
	"info":      {summary: "Replies with text sections about the server, its Raft state, clients and counters.", since: "1.0.0", syntax: "[section [section ...]]"},
	"readonly":  {summary: "Accepted from cluster clients in redirect mode; changes nothing.", since: "3.0.0"},
	"readwrite": {summary: "Accepted from cluster clients in redirect mode; changes nothing.", since: "3.0.0"},
	"client": {summary: "Groups the subcommands about client connections.", since: "2.4.0", subs: map[string]docEntry{
		"setname":  {summary: "Gives the current connection a name.", since: "2.6.9", syntax: "connection-name"},
		"getname":  {summary: "Replies with the current connection's name, or nil if it has none.", since: "2.6.9"},
		"id":       {summary: "Replies with the current connection's numeric id.", since: "5.0.0"},
		"setinfo":  {summary: "Records the client library's name or version, shown by CLIENT LIST.", since: "7.2.0", syntax: "LIB-NAME libname | LIB-VER libver"},
		"info":     {summary: "Describes the current connection in a CLIENT LIST line.", since: "6.2.0"},
		"list":     {summary: "Describes the open connections, a line each, optionally only some.", since: "2.4.0", syntax: "[TYPE (NORMAL | MASTER | REPLICA | PUBSUB)] [ID client-id [client-id ...]]"},
		"kill":     {summary: "Closes the connection at an address, or all those matching the filters.", since: "2.4.0", syntax: "ip:port | ([ID client-id] [TYPE (NORMAL | MASTER | SLAVE | REPLICA | PUBSUB)] [USER username] [ADDR ip:port] [LADDR ip:port] [SKIPME (YES | NO)] [MAXAGE maxage])"},
		"no-evict": {summary: "Accepted for compatibility; Seshat never evicts clients.", since: "7.0.0", syntax: "ON | OFF"},
		"no-touch": {summary: "Accepted for compatibility; Seshat records no access times.", since: "7.2.0", syntax: "ON | OFF"},
		"help":     {summary: "Lists CLIENT's subcommands.", since: "5.0.0"},
	}},
	"command": {summary: "Describes the commands this server answers.", since: "2.8.13", subs: map[string]docEntry{
		"count":   {summary: "Replies with how many commands this server answers.", since: "2.8.13"},
		"info":    {summary: "Gives arity, flags and key positions of the named commands, or of all.", since: "2.8.13", syntax: "[command-name [command-name ...]]"},
		"docs":    {summary: "Gives summaries and argument trees of the named commands, or of all.", since: "7.0.0", syntax: "[command-name [command-name ...]]"},
		"list":    {summary: "Lists command names, optionally only those in a category or fitting a pattern.", since: "7.0.0", syntax: "[FILTERBY (MODULE module-name | ACLCAT category | PATTERN pattern)]"},
		"getkeys": {summary: "Picks the key arguments out of a complete command line.", since: "2.8.13", syntax: "command arg [arg ...]"},
		"help":    {summary: "Lists COMMAND's subcommands.", since: "5.0.0"},
	}},
	"config": {summary: "Groups the subcommands about the server's settings.", since: "2.0.0", subs: map[string]docEntry{
		"get":       {summary: "Replies with the settings whose names fit any of the patterns, and their values.", since: "2.0.0", syntax: "parameter:pattern [parameter:pattern ...]"},
		"set":       {summary: "Refuses to change settings: Seshat fixes them at start-up.", since: "2.0.0", syntax: "parameter value [parameter value ...]"},
		"resetstat": {summary: "Zeroes the command and connection counters INFO shows.", since: "2.0.0"},
		"rewrite":   {summary: "Refused: Seshat has no configuration file to write.", since: "2.8.0"},
		"help":      {summary: "Lists CONFIG's subcommands.", since: "5.0.0"},
	}},
	"seshat.member": {summary: "Changes the Raft cluster's membership online, one node at a time; on any node (a follower relays it to the leader).", since: "7.0.0", subs: map[string]docEntry{
		"list":    {summary: "One row per member: id, role (voter or learner), peer address, client address, match index and lag behind the leader (-1: unknown).", since: "7.0.0"},
		"add":     {summary: "Adds a node as a learner (it receives the log, does not vote); the leader promotes it to voter once it has caught up.", since: "7.0.0", syntax: "id peer-addr client-addr"},
		"promote": {summary: "Makes a caught-up learner a voter now (TRYAGAIN while it lags; it is then promoted when caught up).", since: "7.0.0", syntax: "id"},
		"demote":  {summary: "Makes a voter a learner that is not promoted again automatically; a leader demoting itself hands over first.", since: "7.0.0", syntax: "id"},
		"remove":  {summary: "Removes a node; its id is retired and never accepted again; a leader removing itself hands over first.", since: "7.0.0", syntax: "id"},
		"replace": {summary: "Removes a failed node and adds a new one, with a new id, as a learner promoted when caught up.", since: "7.0.0", syntax: "old-id new-id peer-addr client-addr"},
		"join":    {summary: "What seshatd --join sends: adds the node as a learner and replies with the cluster UUID and the members.", since: "7.0.0", syntax: "id peer-addr client-addr"},
	}},
	"cluster": {summary: "Groups the Redis Cluster subcommands; in redirect mode they show the Raft leader as the only master.", since: "3.0.0", subs: map[string]docEntry{
		"slots":   {summary: "Replies with one slot range, every slot, owned by the Raft leader.", since: "3.0.0"},
		"shards":  {summary: "Describes one shard holding every slot, its only node the Raft leader.", since: "7.0.0"},
		"nodes":   {summary: "Replies with a cluster-nodes line for the Raft leader.", since: "3.0.0"},
		"info":    {summary: "Replies with cluster state fields as seen from this node.", since: "3.0.0"},
		"myid":    {summary: "Replies with this node's 40-character cluster name.", since: "3.0.0"},
		"keyslot": {summary: "Replies with the hash slot a key falls in.", since: "3.0.0", syntax: "key:string"},
	}},
})

// paramTypes are the parameter types inferred from their names.
var paramTypes = map[string]string{
	"key": "key", "pattern": "pattern",
	"cursor": "integer", "count": "integer", "seconds": "integer", "milliseconds": "integer",
	"offset": "integer", "start": "integer", "end": "integer", "index": "integer",
	"index1": "integer", "index2": "integer", "db": "integer", "destination-db": "integer",
	"bit": "integer", "increment": "integer", "decrement": "integer", "client-id": "integer",
	"maxage": "integer", "protover": "integer",
	"unix-time-seconds": "unix-time", "unix-time-milliseconds": "unix-time",
}

var argTypes = map[string]bool{"key": true, "string": true, "integer": true, "double": true, "pattern": true, "unix-time": true}

// docArg is one node of a COMMAND DOCS "arguments" tree.
type docArg struct {
	Name  string
	Type  string // key, string, integer, double, pattern, unix-time, pure-token, oneof, block
	Token string
	// Flags.
	Optional, Multiple, MultipleToken bool
	// Args are a oneof's alternatives or a block's parts.
	Args []docArg
}

// synNode is a parsed piece of a syntax line: a word, or a group of
// alternatives.
type synNode struct {
	word                    string
	alts                    [][]synNode
	optional                bool
	multiple, multipleToken bool
}

func (n synNode) String() string {
	if n.alts == nil {
		return n.word
	}
	parts := make([]string, len(n.alts))
	for i, alt := range n.alts {
		words := make([]string, len(alt))
		for j, x := range alt {
			words[j] = x.String()
		}
		parts[i] = strings.Join(words, " ")
	}
	open, close := "(", ")"
	if n.optional {
		open, close = "[", "]"
	}
	s := open + strings.Join(parts, " | ") + close
	if n.multiple {
		s += "+"
	}
	return s
}

func isToken(w string) bool {
	return w != "..." && strings.ToUpper(w) == w && strings.ToLower(w) != w
}

// parseSyntax turns a syntax line into its arguments tree.
func parseSyntax(line string) ([]docArg, error) {
	var toks []string
	for _, f := range strings.Fields(line) {
		for f != "" {
			i := strings.IndexAny(f, "[]()|")
			switch {
			case i < 0:
				toks, f = append(toks, f), ""
			case i > 0:
				toks, f = append(toks, f[:i]), f[i:]
			default:
				toks, f = append(toks, f[:1]), f[1:]
			}
		}
	}
	p := &synParser{toks: toks}
	alts, err := p.alts("")
	if err != nil {
		return nil, fmt.Errorf("syntax %q: %w", line, err)
	}
	var args []docArg
	if len(alts) > 1 {
		// A top-level "a | b": one required oneof.
		a, err := groupArg(synNode{alts: alts})
		if err != nil {
			return nil, fmt.Errorf("syntax %q: %w", line, err)
		}
		args = []docArg{a}
	} else if args, err = argsOf(alts[0]); err != nil {
		return nil, fmt.Errorf("syntax %q: %w", line, err)
	}
	return args, nil
}

type synParser struct {
	toks []string
	pos  int
}

// alts reads alternatives up to closer ("" for the end of the line),
// folding repetitions in each.
func (p *synParser) alts(closer string) ([][]synNode, error) {
	var out [][]synNode
	var seq []synNode
	for {
		if p.pos == len(p.toks) {
			if closer != "" {
				return nil, fmt.Errorf("missing %q", closer)
			}
			break
		}
		t := p.toks[p.pos]
		p.pos++
		if t == closer {
			break
		}
		switch t {
		case "|":
			out, seq = append(out, seq), nil
		case "[", "(":
			want := map[string]string{"[": "]", "(": ")"}[t]
			alts, err := p.alts(want)
			if err != nil {
				return nil, err
			}
			seq = append(seq, synNode{alts: alts, optional: t == "["})
		case "]", ")":
			return nil, fmt.Errorf("unexpected %q", t)
		default:
			seq = append(seq, synNode{word: t})
		}
	}
	out = append(out, seq)
	for i, alt := range out {
		if len(alt) == 0 {
			return nil, fmt.Errorf("empty group or alternative")
		}
		folded, err := fold(alt)
		if err != nil {
			return nil, err
		}
		out[i] = folded
	}
	return out, nil
}

// fold replaces "x [x ...]" in seq by one repeated group holding x. A
// "..." ending seq is kept for the enclosing group's fold; anywhere else
// argsOf rejects it.
func fold(seq []synNode) ([]synNode, error) {
	var out []synNode
	for _, n := range seq {
		if !n.optional || len(n.alts) != 1 || n.alts[0][len(n.alts[0])-1].word != "..." {
			out = append(out, n)
			continue
		}
		body := n.alts[0][:len(n.alts[0])-1]
		k := len(body)
		if k == 0 || k > len(out) || !sameNodes(out[len(out)-k:], body) {
			return nil, fmt.Errorf("%s does not repeat what precedes it", n)
		}
		rep := synNode{alts: [][]synNode{append([]synNode(nil), out[len(out)-k:]...)}, multiple: true,
			multipleToken: k > 1 && isToken(body[0].word)}
		out = append(out[:len(out)-k], rep)
	}
	return out, nil
}

func sameNodes(a, b []synNode) bool {
	for i := range a {
		if a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}

// argsOf turns a sequence into arguments.
func argsOf(seq []synNode) ([]docArg, error) {
	var out []docArg
	for i := 0; i < len(seq); i++ {
		n := seq[i]
		var a docArg
		var err error
		switch {
		case n.alts != nil:
			a, err = groupArg(n)
		case n.word == "...":
			return nil, fmt.Errorf("\"...\" must end an optional group repeating what precedes it")
		case isToken(n.word):
			// The token of the next parameter or required group, if any.
			if i+1 == len(seq) || seq[i+1].optional || seq[i+1].word == "..." || isToken(seq[i+1].word) {
				a = pureToken(n.word)
				break
			}
			i++
			if a, err = nodeArg(seq[i]); err == nil {
				if a.Token != "" {
					return nil, fmt.Errorf("%s: two tokens for one argument", n.word)
				}
				a.Token = n.word
			}
		default:
			a, err = param(n.word)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func nodeArg(n synNode) (docArg, error) {
	if n.alts != nil {
		return groupArg(n)
	}
	return param(n.word)
}

func pureToken(w string) docArg {
	return docArg{Name: strings.ToLower(w), Type: "pure-token", Token: w}
}

func param(w string) (docArg, error) {
	name, typ := w, paramTypes[w]
	if i := strings.LastIndexByte(w, ':'); i > 0 && argTypes[w[i+1:]] {
		name, typ = w[:i], w[i+1:]
	}
	if name == "" || strings.ContainsAny(name, "[]()|") {
		return docArg{}, fmt.Errorf("bad parameter %q", w)
	}
	if typ == "" {
		typ = "string"
	}
	return docArg{Name: name, Type: typ}, nil
}

// groupArg turns a group into one argument: a oneof for alternatives,
// else its single argument or a block.
func groupArg(n synNode) (docArg, error) {
	var a docArg
	if len(n.alts) > 1 {
		a = docArg{Type: "oneof"}
		var names []string
		for _, alt := range n.alts {
			sub, err := altArg(alt)
			if err != nil {
				return docArg{}, err
			}
			a.Args = append(a.Args, sub)
			names = append(names, sub.Name)
		}
		a.Name = strings.Join(names, "_")
	} else {
		var err error
		if a, err = altArg(n.alts[0]); err != nil {
			return docArg{}, err
		}
	}
	if (n.optional && a.Optional) || (n.multiple && a.Multiple) {
		a = docArg{Name: a.Name, Type: "block", Args: []docArg{a}}
	}
	a.Optional = a.Optional || n.optional
	if n.multiple {
		a.Multiple, a.MultipleToken = true, n.multipleToken
	}
	return a, nil
}

// altArg turns one alternative into one argument.
func altArg(seq []synNode) (docArg, error) {
	if len(seq) > 2 && isToken(seq[0].word) {
		args, err := argsOf(seq[1:])
		if err != nil {
			return docArg{}, err
		}
		if len(args) > 1 {
			return docArg{Name: strings.ToLower(seq[0].word), Type: "block", Token: seq[0].word, Args: args}, nil
		}
	}
	args, err := argsOf(seq)
	if err != nil {
		return docArg{}, err
	}
	if len(args) == 1 {
		return args[0], nil
	}
	names := make([]string, len(args))
	for i, a := range args {
		names[i] = a.Name
	}
	return docArg{Name: strings.Join(names, "_"), Type: "block", Args: args}, nil
}

// reply is the argument as COMMAND DOCS shows it.
func (a docArg) reply() domain.Reply {
	s := domain.StringReply
	kv := []domain.Reply{s("name"), s(a.Name), s("type"), s(a.Type)}
	if a.Type == "key" {
		// Seshat's COMMAND INFO gives each command one key spec.
		kv = append(kv, s("key_spec_index"), domain.IntReply(0))
	}
	if a.Token != "" {
		kv = append(kv, s("token"), s(a.Token))
	}
	var flags []string
	if a.Optional {
		flags = append(flags, "optional")
	}
	if a.Multiple {
		flags = append(flags, "multiple")
	}
	if a.MultipleToken {
		flags = append(flags, "multiple_token")
	}
	if flags != nil {
		kv = append(kv, s("flags"), setReply(flags, ""))
	}
	if a.Args != nil {
		kv = append(kv, s("arguments"), argsReply(a.Args))
	}
	return mapReply(kv...)
}

func argsReply(args []docArg) domain.Reply {
	out := make([]domain.Reply, len(args))
	for i, a := range args {
		out[i] = a.reply()
	}
	return domain.ArrayReply(out...)
}

// docReply builds the COMMAND DOCS map of e; name is "cmd" or "cmd|sub".
func (e docEntry) docReply(name, group string) (domain.Reply, error) {
	s := domain.StringReply
	kv := []domain.Reply{s("summary"), s(e.summary), s("since"), s(e.since), s("group"), s(group)}
	if e.syntax != "" {
		args, err := parseSyntax(e.syntax)
		if err != nil {
			return domain.Reply{}, fmt.Errorf("%s: %w", name, err)
		}
		kv = append(kv, s("arguments"), argsReply(args))
	}
	if e.subs != nil {
		subs := make([]string, 0, len(e.subs))
		for sub := range e.subs {
			subs = append(subs, sub)
		}
		sort.Strings(subs)
		var sm []domain.Reply
		for _, sub := range subs {
			full := name + "|" + sub
			r, err := e.subs[sub].docReply(full, group)
			if err != nil {
				return domain.Reply{}, err
			}
			sm = append(sm, s(full), r)
		}
		kv = append(kv, s("subcommands"), mapReply(sm...))
	}
	return mapReply(kv...), nil
}

// docReplies are the COMMAND DOCS maps of commandTable's commands, built
// once.
var docReplies = func() map[string]domain.Reply {
	out := make(map[string]domain.Reply, len(commandTable))
	for name, c := range commandTable {
		e, ok := docTable[name]
		if !ok {
			continue
		}
		r, err := e.docReply(name, c.group)
		if err != nil {
			panic("resp: command docs: " + err.Error())
		}
		out[name] = r
	}
	return out
}()

func (c cmdInfo) docsReply() domain.Reply {
	if r, ok := docReplies[c.name]; ok {
		return r
	}
	s := domain.StringReply
	return mapReply(s("summary"), s(""), s("since"), s(""), s("group"), s(c.group))
}
