package keyspace

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

// MemberCommand is the internal write command that keeps the cluster's
// address book, replicated through the log like any write:
//
//	seshat.member set ID PEER-ADDR CLIENT-ADDR AUTO   (AUTO: 1 promote when caught up, 0 not)
//	seshat.member retire ID
//
// The book is one record of SystemDB (key "members"), so a snapshot
// carries it and a new node learns every address from what it applies.
// "set" of a retired id answers an error and changes nothing: an id once
// removed is never accepted again, decided at apply time, in log order.
const MemberCommand = "seshat.member"

var bookKey = []byte("members")

var memberCommands = []*Spec{
	{Name: MemberCommand, Arity: -3, Flags: Write | Internal, Group: "server", run: member},
}

func init() { register(memberCommands) }

// MemberAddr is one member's entry of the address book.
type MemberAddr struct {
	ID     domain.NodeID
	Peer   string // peer (Raft transport) address
	Client string // client (RESP) address
	// AutoPromote: the leader promotes this node to voter once it has
	// caught up (ADD, JOIN, REPLACE, PROMOTE set it; DEMOTE clears it).
	AutoPromote bool
}

// AddressBook is the replicated address book: the members' addresses
// and the ids removed for good.
type AddressBook struct {
	Members []MemberAddr // sorted by id
	Retired []domain.NodeID
}

// Get returns id's entry.
func (b AddressBook) Get(id domain.NodeID) (MemberAddr, bool) {
	for _, m := range b.Members {
		if m.ID == id {
			return m, true
		}
	}
	return MemberAddr{}, false
}

// IsRetired reports whether id was removed for good.
func (b AddressBook) IsRetired(id domain.NodeID) bool { return slices.Contains(b.Retired, id) }

// encode: one line per entry, "m ID PEER CLIENT AUTO" or "r ID".
func (b AddressBook) encode() []byte {
	var sb strings.Builder
	for _, m := range b.Members {
		auto := 0
		if m.AutoPromote {
			auto = 1
		}
		fmt.Fprintf(&sb, "m %d %s %s %d\n", m.ID, m.Peer, m.Client, auto)
	}
	for _, id := range b.Retired {
		fmt.Fprintf(&sb, "r %d\n", id)
	}
	return []byte(sb.String())
}

func decodeBook(v []byte) (AddressBook, error) {
	var b AddressBook
	for _, line := range strings.Split(string(v), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		bad := fmt.Errorf("%w: address book line %q", domain.ErrCorrupt, line)
		if len(f) < 2 {
			return b, bad
		}
		id, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || id == 0 {
			return b, bad
		}
		switch {
		case f[0] == "m" && len(f) == 5:
			b.Members = append(b.Members, MemberAddr{ID: domain.NodeID(id), Peer: f[2], Client: f[3], AutoPromote: f[4] == "1"})
		case f[0] == "r" && len(f) == 2:
			b.Retired = append(b.Retired, domain.NodeID(id))
		default:
			return b, bad
		}
	}
	return b, nil
}

// ReadAddressBook returns the address book in st (empty if none was ever
// written).
func ReadAddressBook(st Store) (AddressBook, error) {
	r, ok, err := st.Get(SystemDB, bookKey)
	if err != nil || !ok {
		return AddressBook{}, err
	}
	return decodeBook(r.Value)
}

// retiredReply is the reply to "set" of a removed id.
func retiredReply(id domain.NodeID) domain.Reply {
	return domain.ErrorReply(fmt.Sprintf("ERR node %d was removed from the cluster and may never rejoin; use a new id", id))
}

func member(c *ctx, args [][]byte) domain.Reply {
	sub := strings.ToLower(string(args[1]))
	id, err := strconv.ParseUint(string(args[2]), 10, 64)
	if err != nil || id == 0 {
		return domain.ErrorReply("ERR invalid node id")
	}
	nid := domain.NodeID(id)
	r, ok, err := c.st.Get(SystemDB, bookKey)
	if err != nil {
		c.fail(err)
		return domain.NilReply
	}
	var b AddressBook
	if ok {
		if b, err = decodeBook(r.Value); err != nil {
			c.fail(err)
			return domain.NilReply
		}
	}
	b.Members = slices.DeleteFunc(slices.Clone(b.Members), func(m MemberAddr) bool { return m.ID == nid })
	switch {
	case sub == "set" && len(args) == 6:
		if b.IsRetired(nid) {
			return retiredReply(nid)
		}
		peer, client := string(args[3]), string(args[4])
		if peer == "" || client == "" || strings.ContainsAny(peer+client, " \n") {
			return domain.ErrorReply("ERR invalid address")
		}
		b.Members = append(b.Members, MemberAddr{ID: nid, Peer: peer, Client: client, AutoPromote: string(args[5]) == "1"})
		slices.SortFunc(b.Members, func(x, y MemberAddr) int { return cmpID(x.ID, y.ID) })
	case sub == "retire" && len(args) == 3:
		if !b.IsRetired(nid) {
			b.Retired = append(b.Retired, nid)
			slices.SortFunc(b.Retired, cmpID)
		}
	default:
		return domain.ErrorReply("ERR syntax error")
	}
	c.putIn(SystemDB, bookKey, Record{Value: b.encode()})
	return domain.OK
}

func cmpID(a, b domain.NodeID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
