package keyspace

import (
	"fmt"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

var objectCommands = []*Spec{
	{Name: "object", Arity: -2, Flags: ReadOnly, FirstKey: 2, LastKey: 2, Step: 1, Group: "generic", run: object},
}

// Redis 7.0's thresholds for its compact encodings, which OBJECT
// ENCODING reports: Seshat stores every collection the same way, but a
// client (or a test) that looks at the encoding sees what Redis would
// show for the same sizes.
const (
	compactEntries = 128 // hash-max-listpack-entries, zset-max-listpack-entries
	compactValue   = 64  // hash-max-listpack-value, zset-max-listpack-value
	intsetEntries  = 512 // set-max-intset-entries
	embstrBytes    = 44
)

// object is OBJECT ENCODING, REFCOUNT and IDLETIME.
func object(c *ctx, args [][]byte) domain.Reply {
	sub := strings.ToLower(string(args[1]))
	if len(args) != 3 || (sub != "encoding" && sub != "refcount" && sub != "idletime") {
		return domain.ErrorReply(OneLine(fmt.Sprintf("ERR unknown subcommand '%s'. Try OBJECT HELP.", args[1])))
	}
	r, ok := c.lookup(args[2])
	if !ok {
		return domain.NilReply
	}
	switch sub {
	case "refcount":
		return domain.IntReply(1)
	case "idletime":
		return domain.IntReply(0)
	}
	return domain.Reply{Kind: domain.ReplyBulk, Bulk: []byte(c.encoding(r))}
}

// encoding names the encoding Redis 7.0 would use for r.
func (c *ctx) encoding(r Record) string {
	switch r.Type {
	case TypeString:
		if _, isInt := ParseInt(r.Value); isInt && len(r.Value) <= 20 {
			return "int"
		}
		if len(r.Value) <= embstrBytes {
			return "embstr"
		}
		return "raw"
	case TypeList:
		return "quicklist"
	case TypeSet:
		if r.Count > intsetEntries {
			return "hashtable"
		}
		for _, m := range c.setMembers(r) {
			if _, isInt := ParseInt(m); !isInt {
				return "hashtable"
			}
		}
		return "intset"
	}
	if r.Count > compactEntries {
		if r.Type == TypeHash {
			return "hashtable"
		}
		return "skiplist"
	}
	for _, p := range c.members(r) {
		if len(p.sub) > compactValue || r.Type == TypeHash && len(p.val) > compactValue {
			if r.Type == TypeHash {
				return "hashtable"
			}
			return "skiplist"
		}
	}
	return "listpack"
}
