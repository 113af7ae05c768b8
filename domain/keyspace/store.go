package keyspace

import "github.com/seshat-kv/seshat/domain"

// Store is the engine's view of the stored keys, one state machine's
// batch for writes or its applied state for reads. Databases are numbered
// 0 to domain.MaxDatabases-1; the last is the engine's own (SystemDB).
//
// Errors are I/O or corruption failures; the engine stops and returns
// them. A Store keeps, per database, the count of keys and of keys with a
// deadline, as Put and Delete change them.
type Store interface {
	// Get returns key's record in db, or false if it has none. The
	// record's Value must not be modified and is valid until the next call.
	Get(db int, key []byte) (Record, bool, error)
	// Put stores r at key in db, replacing any record. r.Value may alias
	// the entry being applied: a store that keeps the slice copies it.
	Put(db int, key []byte, r Record) error
	// Delete removes key from db; a missing key is not an error.
	Delete(db int, key []byte) error

	// A string's value by parts, so that a command that reads or
	// changes a few bytes of a value of hundreds of megabytes (GETRANGE,
	// APPEND, SETRANGE, SETBIT) does not read or rewrite the whole of it,
	// where the store keeps a large value in parts. A store that keeps
	// values whole may read and write them whole (WholeStat and
	// PatchValue do that for it).

	// Stat returns key's record in db with its Value left out (nil) and
	// the length of its value, or false if it has none.
	Stat(db int, key []byte) (r Record, size int, ok bool, err error)
	// ReadAt copies the bytes of key's value in db from off into dst.
	// The key holds a record whose value has at least off+len(dst)
	// bytes.
	ReadAt(db int, key []byte, off int, dst []byte) error
	// WriteAt stores r (its Value ignored) at key in db with the value
	// the key holds, padded with zero bytes up to off if it is shorter,
	// and data written at off. The key holds a string record.
	WriteAt(db int, key []byte, r Record, off int, data []byte) error
	// Scan calls fn with db's keys in ascending (Hash(key), key) order,
	// starting at the first whose hash is at least from, until fn returns
	// false, each with its record without its value (Value nil): a scan
	// of keys (KEYS, SCAN, the expiry reaper) reads no value, which may
	// be hundreds of megabytes; Get reads one. fn must not change the
	// store. Key and record are valid only during the call.
	Scan(db int, from uint64, fn func(key []byte, r Record) bool) error
	// FlushDB removes every key of db.
	FlushDB(db int) error
	// SwapDB exchanges the contents of databases a and b.
	SwapDB(a, b int) error
	// Len returns the number of keys in db and of those with a deadline,
	// expired ones not yet removed included (as Redis's DBSIZE).
	Len(db int) (keys, expires int64, err error)

	// The elements of a collection: pairs of sub-key and value under
	// the collection's instance (Record.Inst) in db, ordered by sub-key
	// (bytewise). The engine keeps the record's Count; the store only
	// keeps the pairs. FlushDB removes db's elements and SwapDB moves
	// them with the records; Delete and Put leave them alone (DropElems
	// removes an instance's). The engine never asks for an instance in
	// a database other than the one its record is in.

	// ElemGet returns the value at sub, valid until the next call.
	ElemGet(db int, inst uint64, sub []byte) ([]byte, bool, error)
	// ElemPut stores val at sub, replacing any; a store that keeps the
	// slices copies them.
	ElemPut(db int, inst uint64, sub, val []byte) error
	// ElemDelete removes sub; a missing one is not an error.
	ElemDelete(db int, inst uint64, sub []byte) error
	// ElemScan calls fn with the pairs in ascending sub-key order from
	// the first at or after from (nil: the first), or with reverse in
	// descending order from the last at or before from (nil: the last),
	// until fn returns false. fn must not change the store; its slices
	// are valid only during the call.
	ElemScan(db int, inst uint64, from []byte, reverse bool, fn func(sub, val []byte) bool) error
	// DropElems removes every pair of inst, of which there are about
	// count (a hint). It must cost the write path O(1), whatever count,
	// so that deleting a huge collection never stalls the cluster.
	DropElems(db int, inst uint64, count int64) error
}

// WholeStat is Stat for a store that keeps values whole: r from Get,
// with its value left out.
func WholeStat(r Record, ok bool, err error) (Record, int, bool, error) {
	n := len(r.Value)
	r.Value = nil
	return r, n, ok, err
}

// PatchValue returns, in a new slice, old padded with zero bytes up to
// off if it is shorter and data written at off: WriteAt's value for a
// store that keeps values whole.
func PatchValue(old []byte, off int, data []byte) []byte {
	v := make([]byte, max(len(old), off+len(data)))
	domain.AppendInSteps(v[:0], old) // copy, in place
	domain.AppendInSteps(v[off:off], data)
	return v
}
