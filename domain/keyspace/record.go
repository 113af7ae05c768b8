package keyspace

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/seshat-kv/seshat/domain"
)

// Type is the kind of value a key holds.
type Type uint8

// The types, numbered as stored: never renumber.
const (
	TypeString Type = iota
	TypeHash
	TypeList
	TypeSet
	TypeZSet
	typeCount
)

// Name is the type as TYPE and SCAN ... TYPE spell it.
func (t Type) Name() string {
	switch t {
	case TypeString:
		return "string"
	case TypeHash:
		return "hash"
	case TypeList:
		return "list"
	case TypeSet:
		return "set"
	case TypeZSet:
		return "zset"
	}
	return "unknown"
}

// Record is what a key holds: its type, a string value, the deadline
// after which the key is gone, and the version WATCH compares. A
// collection (any type but TypeString) keeps its elements apart, one
// stored pair each (Store.ElemPut), under its instance: the record holds
// only their number and, for a list, the position of its head.
type Record struct {
	Type  Type
	Value []byte
	// ExpireAt is the deadline in Unix milliseconds; 0 means none.
	ExpireAt int64
	// Version is the log index of the entry that last wrote the key.
	Version uint64
	// Count is a collection's number of elements (a list's length, a
	// hash's fields).
	Count int64
	// Inst names a collection's elements in the store: it is new each
	// time a collection is created, so the elements of a deleted or
	// overwritten one are never mistaken for a new one's. 0 for strings.
	Inst uint64
	// Head is a list's first element's position; element i is at Head+i.
	Head int64
}

// Record formats: 1 a string (the only format before collections, so
// stored strings read as before), 2 a collection.
const (
	recordVersion     = 1
	collectionVersion = 2
)

// EncodeRecord returns r's stored form: a version byte, the version and
// deadline (varints), then the value; a collection's form has its type
// after the version byte and its count, instance and head after the
// deadline.
func EncodeRecord(r Record) []byte {
	b := make([]byte, 0, 2+5*binary.MaxVarintLen64+len(r.Value))
	return AppendRecord(b, r)
}

// AppendRecord appends r's stored form to b.
func AppendRecord(b []byte, r Record) []byte {
	if r.Type != TypeString {
		b = append(b, collectionVersion, byte(r.Type))
		b = binary.AppendUvarint(b, r.Version)
		b = binary.AppendVarint(b, r.ExpireAt)
		b = binary.AppendUvarint(b, uint64(r.Count))
		b = binary.AppendUvarint(b, r.Inst)
		b = binary.AppendVarint(b, r.Head)
		return append(b, r.Value...)
	}
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, r.Version)
	b = binary.AppendVarint(b, r.ExpireAt)
	return append(b, r.Value...)
}

// DecodeRecord parses EncodeRecord's form; Value aliases b. Malformed input
// is an error wrapping domain.ErrCorrupt.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) >= 2 && b[0] == collectionVersion {
		return decodeCollection(b)
	}
	if len(b) == 0 || b[0] != recordVersion {
		return Record{}, fmt.Errorf("%w: record: bad version", domain.ErrCorrupt)
	}
	b = b[1:]
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return Record{}, fmt.Errorf("%w: record: bad version number", domain.ErrCorrupt)
	}
	b = b[n:]
	exp, n := binary.Varint(b)
	if n <= 0 || exp < 0 {
		return Record{}, fmt.Errorf("%w: record: bad deadline", domain.ErrCorrupt)
	}
	b = b[n:]
	return Record{Value: b, ExpireAt: exp, Version: v}, nil
}

func decodeCollection(b []byte) (Record, error) {
	r := Record{Type: Type(b[1])}
	if r.Type == TypeString || r.Type >= typeCount {
		return Record{}, fmt.Errorf("%w: record: bad type %d", domain.ErrCorrupt, b[1])
	}
	b = b[2:]
	bad := false
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	sv := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	r.Version = uv()
	r.ExpireAt = sv()
	count := uv()
	r.Inst = uv()
	r.Head = sv()
	if bad || r.ExpireAt < 0 || count > 1<<62 || r.Inst == 0 {
		return Record{}, fmt.Errorf("%w: record: bad collection header", domain.ErrCorrupt)
	}
	r.Count = int64(count)
	r.Value = b
	return r, nil
}

// Hash orders keys for SCAN: a store iterates a database in (Hash(key),
// key) order, and a SCAN cursor is the hash to resume from. It is FNV-1a,
// fixed forever: cursors must mean the same on every replica and version.
func Hash(key []byte) uint64 {
	h := fnv.New64a()
	h.Write(key)
	return h.Sum64()
}

// expiredAt reports whether r is past its deadline at now.
func (r Record) expiredAt(now int64) bool { return r.ExpireAt != 0 && r.ExpireAt <= now }
