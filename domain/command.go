package domain

import (
	"encoding/binary"
	"fmt"
	"runtime"
)

// OpKind is a key-value operation the state machine applies.
type OpKind uint8

const (
	// OpSet stores Value under Key.
	OpSet OpKind = iota + 1
	// OpDel removes Key; deleting a missing key is not an error.
	OpDel
)

func (k OpKind) String() string {
	switch k {
	case OpSet:
		return "set"
	case OpDel:
		return "del"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one key-value operation.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte
}

// Call is one Redis command as a client sent it (name first), run in
// database DB.
type Call struct {
	DB   int
	Args [][]byte
}

// Watch is a key a transaction watched and the version it had then
// (0: absent). The transaction runs only if the key still has it.
type Watch struct {
	DB      int
	Key     []byte
	Version uint64
}

// Command is what a Normal entry carries, applied atomically, in order:
// first Ops, then Calls.
//
// Ops are the low-level form (set and delete in database 0), which the
// simulator and the storage tests use. Calls are Redis commands, run by the
// keyspace engine with Time as "now": the leader stamps each entry with
// its clock when it proposes, and the state machine never reads a clock,
// so every replica decides expiry alike.
type Command struct {
	Ops []Op
	// Time is the leader's clock at proposal, in Unix milliseconds.
	Time int64
	// Calls run one after the other.
	Calls []Call
	// Tx makes Calls one MULTI/EXEC transaction: its reply is an array of
	// the calls' replies, or a nil array if a Watch no longer holds.
	Tx    bool
	Watch []Watch
}

// Result is what applying one entry produced, handed back to whoever
// proposed it. For Ops, N counts the keys set plus the existing keys
// deleted. For Calls, Reply is the one call's reply, or the transaction's.
// Err is an application error such as a type mismatch, never a Raft error.
type Result struct {
	N     int64
	Value []byte
	Err   error
	Reply Reply
}

// Limits on a decoded command, so a corrupt or hostile entry cannot make a
// node allocate without bound.
const (
	MaxKeySize   = 64 << 10
	MaxValueSize = 512 << 20
	MaxOps       = 1 << 20
	// MaxArgs bounds the arguments of one call, and the calls of one
	// command.
	MaxArgs = 1 << 20
	// MaxDatabases bounds the number of numbered databases.
	MaxDatabases = 256
)

// A command's first byte is its version: 1 carries Ops only, 2 adds the
// time, calls and watches. Both decode, so logs written before calls
// existed still apply.
const (
	commandVersion  = 1
	commandVersion2 = 2
)

// EncodeCommand returns the wire form of c: a version byte, the op count,
// then per op its kind and length-prefixed key and value (uvarints).
func EncodeCommand(c Command) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, op := range c.Ops {
		n += 1 + 2*binary.MaxVarintLen64 + len(op.Key) + len(op.Value)
	}
	v2 := c.Time != 0 || len(c.Calls) > 0 || c.Tx || len(c.Watch) > 0
	if v2 {
		n += 1 + 3*binary.MaxVarintLen64
		for _, call := range c.Calls {
			n += 2 * binary.MaxVarintLen64
			for _, a := range call.Args {
				n += binary.MaxVarintLen64 + len(a)
			}
		}
		for _, w := range c.Watch {
			n += 3*binary.MaxVarintLen64 + len(w.Key)
		}
	}
	b := make([]byte, 0, n)
	if v2 {
		b = append(b, commandVersion2)
	} else {
		b = append(b, commandVersion)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Ops)))
	for _, op := range c.Ops {
		b = append(b, byte(op.Kind))
		b = binary.AppendUvarint(b, uint64(len(op.Key)))
		b = append(b, op.Key...)
		b = binary.AppendUvarint(b, uint64(len(op.Value)))
		b = append(b, op.Value...)
	}
	if !v2 {
		return b
	}
	b = binary.AppendVarint(b, c.Time)
	b = binary.AppendUvarint(b, uint64(len(c.Calls)))
	for _, call := range c.Calls {
		b = binary.AppendUvarint(b, uint64(call.DB))
		b = binary.AppendUvarint(b, uint64(len(call.Args)))
		for _, a := range call.Args {
			b = binary.AppendUvarint(b, uint64(len(a)))
			b = AppendInSteps(b, a)
		}
	}
	if c.Tx {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Watch)))
	for _, w := range c.Watch {
		b = binary.AppendUvarint(b, uint64(w.DB))
		b = binary.AppendUvarint(b, uint64(len(w.Key)))
		b = append(b, w.Key...)
		b = binary.AppendUvarint(b, w.Version)
	}
	return b
}

// copyStep bounds one copy of a large value (AppendInSteps).
const copyStep = 1 << 20

// AppendInSteps appends a to b, as append does, a step at a time, for
// values that can be hundreds of MB (a command's arguments, a string that
// APPEND or SETRANGE grows), yielding between steps. copy runs in
// assembly that the Go scheduler cannot stop, and into fresh memory it
// runs at the speed of page faults: one 256 MiB copy ran 0.8-1.2 s on a
// loaded 2-core VM while a garbage collection, started by the copy's own
// allocation, waited to scan its stack, with the collector's worker
// spinning on the other core; every goroutine of the node that
// allocated meanwhile waited in a mark assist, the Raft loop among them,
// and the followers elected another leader (runtime traces of the leader
// showed both). Steps alone did not help: the collector's preemption
// signal almost always lands inside the copy.
func AppendInSteps(b, a []byte) []byte {
	for len(a) > copyStep {
		b = append(b, a[:copyStep]...)
		a = a[copyStep:]
		runtime.Gosched()
	}
	return append(b, a...)
}

// DecodeCommand parses what EncodeCommand wrote. Malformed input returns an
// error wrapping ErrCorrupt; it never panics. Keys and values alias b.
func DecodeCommand(b []byte) (Command, error) {
	fail := func(what string) (Command, error) {
		return Command{}, fmt.Errorf("%w: command: %s", ErrCorrupt, what)
	}
	if len(b) == 0 {
		return fail("empty")
	}
	version := b[0]
	if version != commandVersion && version != commandVersion2 {
		return fail(fmt.Sprintf("unknown version %d", b[0]))
	}
	b = b[1:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > MaxOps {
		return fail("bad op count")
	}
	b = b[n:]
	// Every op takes at least 3 bytes, so count cannot exceed len(b)/3.
	if count > uint64(len(b))/3 {
		return fail("op count exceeds data")
	}
	c := Command{Ops: make([]Op, 0, count)}
	readBytes := func(limit uint64) ([]byte, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > limit || l > uint64(len(b)-n) {
			return nil, false
		}
		out := b[n : n+int(l) : n+int(l)]
		b = b[n+int(l):]
		return out, true
	}
	for i := uint64(0); i < count; i++ {
		if len(b) == 0 {
			return fail("truncated op")
		}
		kind := OpKind(b[0])
		if kind != OpSet && kind != OpDel {
			return fail(fmt.Sprintf("unknown op kind %d", b[0]))
		}
		b = b[1:]
		key, ok := readBytes(MaxKeySize)
		if !ok {
			return fail("bad key")
		}
		val, ok := readBytes(MaxValueSize)
		if !ok {
			return fail("bad value")
		}
		c.Ops = append(c.Ops, Op{Kind: kind, Key: key, Value: val})
	}
	if version == commandVersion2 {
		if err := decodeV2(&c, &b, readBytes); err != nil {
			return fail(err.Error())
		}
	}
	if len(b) != 0 {
		return fail("trailing bytes")
	}
	return c, nil
}

// decodeV2 reads the fields version 2 adds after the ops.
func decodeV2(c *Command, bp *[]byte, readBytes func(uint64) ([]byte, bool)) error {
	uvarint := func(limit uint64) (uint64, bool) {
		v, n := binary.Uvarint(*bp)
		if n <= 0 || v > limit {
			return 0, false
		}
		*bp = (*bp)[n:]
		return v, true
	}
	t, n := binary.Varint(*bp)
	if n <= 0 {
		return fmt.Errorf("bad time")
	}
	c.Time, *bp = t, (*bp)[n:]
	// Every call and argument takes at least one byte.
	calls, ok := uvarint(min(MaxArgs, uint64(len(*bp))))
	if !ok {
		return fmt.Errorf("bad call count")
	}
	if calls > 0 {
		c.Calls = make([]Call, calls)
	}
	for i := range c.Calls {
		db, ok := uvarint(MaxDatabases)
		if !ok {
			return fmt.Errorf("bad database in call %d", i)
		}
		nargs, ok := uvarint(min(MaxArgs, uint64(len(*bp))))
		if !ok || nargs == 0 {
			return fmt.Errorf("bad argument count in call %d", i)
		}
		args := make([][]byte, nargs)
		for k := range args {
			if args[k], ok = readBytes(MaxValueSize); !ok {
				return fmt.Errorf("bad argument %d of call %d", k, i)
			}
		}
		c.Calls[i] = Call{DB: int(db), Args: args}
	}
	if len(*bp) == 0 || (*bp)[0] > 1 {
		return fmt.Errorf("bad transaction flag")
	}
	c.Tx, *bp = (*bp)[0] == 1, (*bp)[1:]
	watches, ok := uvarint(uint64(len(*bp)))
	if !ok {
		return fmt.Errorf("bad watch count")
	}
	for i := uint64(0); i < watches; i++ {
		db, ok := uvarint(MaxDatabases)
		if !ok {
			return fmt.Errorf("bad database in watch %d", i)
		}
		key, ok := readBytes(MaxKeySize)
		if !ok {
			return fmt.Errorf("bad key in watch %d", i)
		}
		v, ok := uvarint(^uint64(0))
		if !ok {
			return fmt.Errorf("bad version in watch %d", i)
		}
		c.Watch = append(c.Watch, Watch{DB: int(db), Key: key, Version: v})
	}
	return nil
}

// EncodeMembership returns the wire form of m for a Membership entry.
func EncodeMembership(m Membership) []byte {
	b := []byte{commandVersion}
	b = binary.AppendUvarint(b, uint64(len(m.Voters)))
	for _, id := range m.Voters {
		b = binary.AppendUvarint(b, uint64(id))
	}
	b = binary.AppendUvarint(b, uint64(len(m.Learners)))
	for _, id := range m.Learners {
		b = binary.AppendUvarint(b, uint64(id))
	}
	return b
}

// DecodeMembership parses what EncodeMembership wrote and validates it.
func DecodeMembership(b []byte) (Membership, error) {
	fail := func(what string) (Membership, error) {
		return Membership{}, fmt.Errorf("%w: membership: %s", ErrCorrupt, what)
	}
	if len(b) == 0 || b[0] != commandVersion {
		return fail("bad version")
	}
	b = b[1:]
	readIDs := func() ([]NodeID, bool) {
		count, n := binary.Uvarint(b)
		if n <= 0 || count > uint64(len(b)) {
			return nil, false
		}
		b = b[n:]
		var ids []NodeID
		for i := uint64(0); i < count; i++ {
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, false
			}
			b = b[n:]
			ids = append(ids, NodeID(v))
		}
		return ids, true
	}
	var m Membership
	var ok bool
	if m.Voters, ok = readIDs(); !ok {
		return fail("bad voters")
	}
	if m.Learners, ok = readIDs(); !ok {
		return fail("bad learners")
	}
	if len(b) != 0 {
		return fail("trailing bytes")
	}
	if err := m.Validate(); err != nil {
		return Membership{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return m, nil
}
