package resp

import (
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// cmdInfo describes a command for COMMAND INFO (docs.go has its COMMAND
// DOCS text).
type cmdInfo struct {
	name                    string
	arity                   int
	flags                   []string
	firstKey, lastKey, step int
	categories              []string
	group                   string
	write                   bool
}

// localInfo describes the commands the adapter answers itself, as Redis 7
// does.
var localInfo = []cmdInfo{
	{name: "auth", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}, categories: []string{"@fast", "@connection"}, group: "connection"},
	{name: "client", arity: -2, categories: []string{"@slow"}, group: "connection"},
	{name: "cluster", arity: -2, categories: []string{"@slow"}, group: "cluster"},
	{name: "command", arity: -1, flags: []string{"loading", "stale"}, categories: []string{"@slow", "@connection"}, group: "server"},
	{name: "config", arity: -2, categories: []string{"@slow"}, group: "server"},
	{name: "discard", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, categories: []string{"@fast", "@transaction"}, group: "transactions"},
	{name: "echo", arity: 2, flags: []string{"fast"}, categories: []string{"@fast", "@connection"}, group: "connection"},
	{name: "exec", arity: 1, flags: []string{"noscript", "loading", "stale", "skip_slowlog"}, categories: []string{"@slow", "@transaction"}, group: "transactions"},
	{name: "hello", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}, categories: []string{"@fast", "@connection"}, group: "connection"},
	{name: "info", arity: -1, flags: []string{"loading", "stale"}, categories: []string{"@slow", "@dangerous"}, group: "server"},
	{name: "multi", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, categories: []string{"@fast", "@transaction"}, group: "transactions"},
	{name: "ping", arity: -1, flags: []string{"fast"}, categories: []string{"@fast", "@connection"}, group: "connection"},
	{name: "quit", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}, categories: []string{"@fast", "@connection"}, group: "connection"},
	{name: "readonly", arity: 1, flags: []string{"loading", "stale", "fast"}, categories: []string{"@fast", "@connection"}, group: "cluster"},
	{name: "readwrite", arity: 1, flags: []string{"loading", "stale", "fast"}, categories: []string{"@fast", "@connection"}, group: "cluster"},
	{name: "reset", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}, categories: []string{"@fast", "@connection"}, group: "connection"},
	{name: memberCommand, arity: -2, flags: []string{"admin", "noscript"}, categories: []string{"@admin", "@slow", "@dangerous"}, group: "cluster"},
	{name: "select", arity: 2, flags: []string{"loading", "stale", "fast"}, categories: []string{"@fast", "@connection"}, group: "connection"},
	{name: "time", arity: 1, flags: []string{"loading", "stale", "fast"}, categories: []string{"@fast"}, group: "server"},
	{name: "unwatch", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, categories: []string{"@fast", "@transaction"}, group: "transactions"},
	{name: "watch", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, firstKey: 1, lastKey: -1, step: 1, categories: []string{"@fast", "@transaction"}, group: "transactions"},
}

// containers are the commands with subcommands (CLIENT LIST's cmd=).
var containers = map[string]bool{"client": true, "command": true, "config": true, "cluster": true}

// commandTable is every command a client may send, by name.
var commandTable = func() map[string]cmdInfo {
	out := map[string]cmdInfo{}
	for _, c := range localInfo {
		out[c.name] = c
	}
	for _, sp := range keyspace.Commands() {
		if sp.Flags&keyspace.Internal != 0 {
			continue
		}
		out[sp.Name] = specInfo(sp)
	}
	return out
}()

func specInfo(sp *keyspace.Spec) cmdInfo {
	c := cmdInfo{name: sp.Name, arity: sp.Arity, flags: sp.Flags.Names(), firstKey: sp.FirstKey,
		lastKey: sp.LastKey, step: sp.Step, group: sp.Group, write: sp.Flags&keyspace.Write != 0}
	if c.firstKey == 0 {
		c.lastKey, c.step = 0, 0
	}
	if c.flags == nil {
		c.flags = []string{}
	}
	if c.write {
		c.categories = append(c.categories, "@write")
	} else {
		c.categories = append(c.categories, "@read")
	}
	switch sp.Group {
	case "generic":
		c.categories = append(c.categories, "@keyspace")
	case "server":
		c.categories = append(c.categories, "@keyspace")
	default:
		c.categories = append(c.categories, "@"+sp.Group)
	}
	if sp.Flags&keyspace.Fast != 0 {
		c.categories = append(c.categories, "@fast")
	} else {
		c.categories = append(c.categories, "@slow")
	}
	return c
}

// commandNames lists the names commandstats counts.
func commandNames() []string {
	out := make([]string, 0, len(commandTable))
	for n := range commandTable {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// set is a RESP3 set in the reply trees COMMAND builds: a status array
// whose first element is this marker.
const setMarker = "\x00set"

func setReply(words []string, prefix string) domain.Reply {
	out := make([]domain.Reply, 0, len(words))
	for _, w := range words {
		out = append(out, statusReply(prefix+w))
	}
	return setOf(out...)
}

func setOf(elems ...domain.Reply) domain.Reply {
	out := make([]domain.Reply, 0, len(elems)+1)
	out = append(out, domain.Reply{Kind: domain.ReplyStatus, Str: setMarker})
	out = append(out, elems...)
	return domain.Reply{Kind: domain.ReplyArray, Array: out}
}

// writeTree writes r as writeValue does, but writes the arrays setReply
// made as RESP3 sets (RESP2: arrays).
func writeTree(conn redcon.Conn, resp3 bool, r domain.Reply) {
	switch r.Kind {
	case domain.ReplyArray, domain.ReplyMap:
		elems := r.Array
		isSet := r.Kind == domain.ReplyArray && len(elems) > 0 && elems[0].Kind == domain.ReplyStatus && elems[0].Str == setMarker
		if isSet {
			elems = elems[1:]
		}
		switch {
		case isSet && resp3:
			conn.WriteRaw([]byte("~" + strconv.Itoa(len(elems)) + "\r\n"))
		case r.Kind == domain.ReplyMap && resp3:
			conn.WriteRaw([]byte("%" + strconv.Itoa(len(elems)/2) + "\r\n"))
		default:
			conn.WriteArray(len(elems))
		}
		for _, e := range elems {
			writeTree(conn, resp3, e)
		}
	default:
		writeValue(conn, resp3, r)
	}
}

func treeItem(r domain.Reply) item {
	return item{req: -1, val: &r, tree: true}
}

func (c cmdInfo) infoReply() domain.Reply {
	s := domain.StringReply
	var specs []domain.Reply
	if c.firstKey > 0 {
		flags := []string{"RO", "access"}
		if c.write {
			flags = []string{"RW", "update"}
		}
		last := c.lastKey
		if last >= 0 {
			last -= c.firstKey
		}
		specs = append(specs, mapReply(
			s("flags"), setReply(flags, ""),
			s("begin_search"), mapReply(s("type"), s("index"), s("spec"), mapReply(s("index"), domain.IntReply(int64(c.firstKey)))),
			s("find_keys"), mapReply(s("type"), s("range"), s("spec"), mapReply(
				s("lastkey"), domain.IntReply(int64(last)),
				s("keystep"), domain.IntReply(int64(c.step)),
				s("limit"), domain.IntReply(0))),
		))
	}
	return domain.ArrayReply(
		s(c.name),
		domain.IntReply(int64(c.arity)),
		setReply(c.flags, ""),
		domain.IntReply(int64(c.firstKey)),
		domain.IntReply(int64(c.lastKey)),
		domain.IntReply(int64(c.step)),
		setReply(c.categories, ""),
		setReply(nil, ""),
		setOf(specs...),
		setOf(),
	)
}

func sortedInfos(names [][]byte) []cmdInfo {
	var out []cmdInfo
	if names == nil {
		for _, n := range commandNames() {
			out = append(out, commandTable[n])
		}
		return out
	}
	for _, n := range names {
		if c, ok := commandTable[strings.ToLower(string(n))]; ok {
			out = append(out, c)
		} else {
			out = append(out, cmdInfo{})
		}
	}
	return out
}

// command answers COMMAND [COUNT | INFO | DOCS | LIST | GETKEYS | HELP].
func command(args [][]byte) item {
	if len(args) == 1 {
		var out []domain.Reply
		for _, c := range sortedInfos(nil) {
			out = append(out, c.infoReply())
		}
		return treeItem(domain.ArrayReply(out...))
	}
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "count":
		if len(args) != 2 {
			return wrongArgs("command|count")
		}
		return valueItem(domain.IntReply(int64(len(commandTable))))
	case "info":
		var names [][]byte
		if len(args) > 2 {
			names = args[2:]
		}
		var out []domain.Reply
		for _, c := range sortedInfos(names) {
			if c.name == "" {
				out = append(out, domain.NilReply)
				continue
			}
			out = append(out, c.infoReply())
		}
		return treeItem(domain.ArrayReply(out...))
	case "docs":
		var names [][]byte
		if len(args) > 2 {
			names = args[2:]
		}
		var out []domain.Reply
		for _, c := range sortedInfos(names) {
			if c.name != "" {
				out = append(out, domain.StringReply(c.name), c.docsReply())
			}
		}
		return treeItem(mapReply(out...))
	case "list":
		var pattern []byte
		switch {
		case len(args) == 2:
		case len(args) == 5 && strings.EqualFold(string(args[2]), "filterby"):
			switch strings.ToLower(string(args[3])) {
			case "pattern":
				pattern = args[4]
			case "aclcat", "module":
			default:
				return errorItem("ERR syntax error")
			}
		default:
			return errorItem("ERR syntax error")
		}
		var out []domain.Reply
		for _, c := range sortedInfos(nil) {
			if len(args) == 5 && pattern == nil {
				// ACLCAT and MODULE filters: categories only.
				cat := "@" + strings.ToLower(string(args[4]))
				if strings.ToLower(string(args[3])) == "module" || !contains(c.categories, cat) {
					continue
				}
			}
			if pattern != nil && !keyspace.Match(pattern, []byte(c.name), true) {
				continue
			}
			out = append(out, domain.StringReply(c.name))
		}
		return valueItem(domain.ArrayReply(out...))
	case "getkeys":
		if len(args) < 4 {
			return wrongArgs("command|getkeys")
		}
		c, ok := commandTable[strings.ToLower(string(args[2]))]
		if !ok {
			return errorItem("ERR Invalid command specified")
		}
		if (c.arity > 0 && len(args)-2 != c.arity) || (c.arity < 0 && len(args)-2 < -c.arity) {
			return errorItem("ERR Invalid number of arguments specified for command")
		}
		if c.firstKey == 0 {
			return errorItem("ERR The command has no key arguments")
		}
		sp := keyspace.Spec{FirstKey: c.firstKey, LastKey: c.lastKey, Step: c.step}
		var out []domain.Reply
		for _, k := range sp.Keys(args[2:]) {
			out = append(out, domain.BulkReply(append([]byte(nil), k...)))
		}
		return valueItem(domain.ArrayReply(out...))
	case "help":
		return helpItem([]string{
			"COMMAND [<subcommand> [<arg> ...]], where <subcommand> is one of:",
			"(none)",
			"    A description of every command Seshat answers.",
			"COUNT | LIST [FILTERBY PATTERN <pattern>]",
			"    How many commands there are, or their names.",
			"INFO [<name> ...] | DOCS [<name> ...]",
			"    Arity, flags and key positions, or summary and arguments, of the",
			"    named commands (of all of them if none is named).",
			"GETKEYS <command> [<arg> ...]",
			"    The keys that command line would touch.",
			"HELP",
			"    This text.",
		})
	}
	return unknownSubcommand(args[1], "COMMAND")
}

func contains(v []string, s string) bool {
	for _, x := range v {
		if x == s {
			return true
		}
	}
	return false
}
