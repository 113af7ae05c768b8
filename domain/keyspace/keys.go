package keyspace

import "github.com/seshat-kv/seshat/domain"

var keyCommands = []*Spec{
	{Name: "del", Arity: -2, Flags: Write, FirstKey: 1, LastKey: -1, Step: 1, Group: "generic", run: del},
	{Name: "exists", Arity: -2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: -1, Step: 1, Group: "generic", run: exists},
}

func del(c *ctx, args [][]byte) domain.Reply {
	var n int64
	for _, k := range args[1:] {
		if _, ok := c.lookup(k); ok {
			c.del(k)
			n++
		}
	}
	return domain.IntReply(n)
}

func exists(c *ctx, args [][]byte) domain.Reply {
	var n int64
	for _, k := range args[1:] {
		if _, ok := c.lookup(k); ok {
			n++
		}
	}
	return domain.IntReply(n)
}
