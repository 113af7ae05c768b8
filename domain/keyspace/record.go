package keyspace

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/seshat-kv/seshat/domain"
)

// Record is what a key holds: a string value, the deadline after which the
// key is gone, and the version WATCH compares.
type Record struct {
	Value []byte
	// ExpireAt is the deadline in Unix milliseconds; 0 means none.
	ExpireAt int64
	// Version is the log index of the entry that last wrote the key.
	Version uint64
}

const recordVersion = 1

// EncodeRecord returns r's stored form: a version byte, the version and
// deadline (varints), then the value.
func EncodeRecord(r Record) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(r.Value))
	return AppendRecord(b, r)
}

// AppendRecord appends r's stored form to b.
func AppendRecord(b []byte, r Record) []byte {
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, r.Version)
	b = binary.AppendVarint(b, r.ExpireAt)
	return append(b, r.Value...)
}

// DecodeRecord parses EncodeRecord's form; Value aliases b. Malformed input
// is an error wrapping domain.ErrCorrupt.
func DecodeRecord(b []byte) (Record, error) {
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
