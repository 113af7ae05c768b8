package keyspace

import (
	"strconv"

	"github.com/seshat-kv/seshat/domain"
)

// WATCH is a write: "seshat.watch db key [key ...]" registers each key in
// the watch registry (SystemDB, key "w" | db | key, expiring after
// TombstoneTTL) and answers the keys' versions. The registry is what lets
// FLUSHDB give tombstones to the watched keys it removes without writing
// one per key, and an EXEC whose registration has expired (a WATCH older
// than TombstoneTTL, whose tombstones may be gone too) aborts rather than
// risk missing a change.
const WatchCommand = "seshat.watch"

var watchCommands = []*Spec{
	{Name: WatchCommand, Arity: -3, Flags: Write | Internal | Fast, FirstKey: 2, LastKey: -1, Step: 1, Group: "transactions", run: watch},
}

func registryKey(db int, key []byte) []byte {
	k := make([]byte, 0, 2+len(key))
	k = append(k, 'w', byte(db))
	return append(k, key...)
}

func watch(c *ctx, args [][]byte) domain.Reply {
	db, ok := ParseInt(args[1])
	if !ok || db < 0 || db >= int64(c.dbs) {
		return ErrDBRange
	}
	out := make([]domain.Reply, 0, len(args)-2)
	for _, k := range args[2:] {
		out = append(out, domain.IntReply(int64(c.version(int(db), k))))
		c.putIn(SystemDB, registryKey(int(db), k), Record{
			Value:    []byte(strconv.FormatInt(c.now, 10)),
			ExpireAt: c.now + TombstoneTTL,
		})
	}
	return domain.ArrayReply(out...)
}

// watchLive reports whether a WATCH of key in db is still registered.
func (c *ctx) watchLive(db int, key []byte) bool {
	r, ok, err := c.st.Get(SystemDB, registryKey(db, key))
	if err != nil {
		c.fail(err)
		return false
	}
	return ok && !r.expiredAt(c.now)
}

// watchedIn returns the keys of db with a live WATCH registration.
func (c *ctx) watchedIn(db int) [][]byte {
	var keys [][]byte
	err := c.st.Scan(SystemDB, 0, func(k []byte, r Record) bool {
		if len(k) >= 2 && k[0] == 'w' && int(k[1]) == db && !r.expiredAt(c.now) {
			keys = append(keys, append([]byte(nil), k[2:]...))
		}
		return true
	})
	if err != nil {
		c.fail(err)
	}
	return keys
}
