package memory

import (
	"bytes"
	"fmt"

	"github.com/seshat-kv/seshat/domain/keyspace"
)

// writeStore is the keyspace.Store Apply runs commands on: the KV's maps,
// with every change recorded for Crash. The caller holds k.mu.
type writeStore struct{ k *KV }

// readStore is View's read-only keyspace.Store. The caller holds k.mu.
type readStore struct{ k *KV }

var (
	_ keyspace.Store = writeStore{}
	_ keyspace.Store = readStore{}
)

func get(k *KV, db int, key []byte) (keyspace.Record, bool, error) {
	r, ok := k.mu.dbs[db][string(key)]
	return r, ok, nil
}

// scan visits db's keys in (hash, key) order from hash from.
func scan(k *KV, db int, from uint64, fn func([]byte, keyspace.Record) bool) error {
	keyspace.ScanMap(k.mu.dbs[db], from, fn)
	return nil
}

func length(k *KV, db int) (int64, int64, error) {
	var keys, expires int64
	for _, r := range k.mu.dbs[db] {
		keys++
		if r.ExpireAt != 0 {
			expires++
		}
	}
	return keys, expires, nil
}

func (s writeStore) Get(db int, key []byte) (keyspace.Record, bool, error) { return get(s.k, db, key) }
func (s writeStore) Scan(db int, from uint64, fn func([]byte, keyspace.Record) bool) error {
	return scan(s.k, db, from, fn)
}
func (s writeStore) Len(db int) (int64, int64, error) { return length(s.k, db) }

func (s writeStore) Put(db int, key []byte, r keyspace.Record) error {
	s.k.saveUndo(db, string(key))
	r.Value = bytes.Clone(r.Value)
	s.k.db(db)[string(key)] = r
	return nil
}

func (s writeStore) Stat(db int, key []byte) (keyspace.Record, int, bool, error) {
	return keyspace.WholeStat(get(s.k, db, key))
}

func (s writeStore) ReadAt(db int, key []byte, off int, dst []byte) error {
	return readAt(s.k, db, key, off, dst)
}

func readAt(k *KV, db int, key []byte, off int, dst []byte) error {
	copy(dst, k.mu.dbs[db][string(key)].Value[off:])
	return nil
}

func (s writeStore) WriteAt(db int, key []byte, r keyspace.Record, off int, data []byte) error {
	s.k.saveUndo(db, string(key))
	r.Value = keyspace.PatchValue(s.k.mu.dbs[db][string(key)].Value, off, data)
	s.k.db(db)[string(key)] = r
	return nil
}

func (s writeStore) Delete(db int, key []byte) error {
	if _, ok := s.k.mu.dbs[db][string(key)]; ok {
		s.k.saveUndo(db, string(key))
		delete(s.k.mu.dbs[db], string(key))
	}
	return nil
}

func (s writeStore) FlushDB(db int) error {
	for key, r := range s.k.mu.dbs[db] {
		s.k.saveUndo(db, key)
		s.DropElems(db, r.Inst, r.Count)
	}
	delete(s.k.mu.dbs, db)
	return nil
}

func (s writeStore) SwapDB(a, b int) error {
	if a == b {
		return nil
	}
	for _, db := range []int{a, b} {
		for key := range s.k.mu.dbs[db] {
			s.k.saveUndo(a, key)
			s.k.saveUndo(b, key)
		}
	}
	s.k.mu.dbs[a], s.k.mu.dbs[b] = s.k.mu.dbs[b], s.k.mu.dbs[a]
	return nil
}

var errReadOnly = fmt.Errorf("memory kv: write through a read-only view")

func (s readStore) Get(db int, key []byte) (keyspace.Record, bool, error) { return get(s.k, db, key) }
func (s readStore) Scan(db int, from uint64, fn func([]byte, keyspace.Record) bool) error {
	return scan(s.k, db, from, fn)
}
func (s readStore) Len(db int) (int64, int64, error) { return length(s.k, db) }
func (s readStore) Stat(db int, key []byte) (keyspace.Record, int, bool, error) {
	return keyspace.WholeStat(get(s.k, db, key))
}
func (s readStore) ReadAt(db int, key []byte, off int, dst []byte) error {
	return readAt(s.k, db, key, off, dst)
}
func (s readStore) WriteAt(int, []byte, keyspace.Record, int, []byte) error { return errReadOnly }
func (s readStore) Put(int, []byte, keyspace.Record) error                  { return errReadOnly }
func (s readStore) Delete(int, []byte) error                                { return errReadOnly }
func (s readStore) FlushDB(int) error                                       { return errReadOnly }
func (s readStore) SwapDB(int, int) error                                   { return errReadOnly }

func (s writeStore) ElemGet(_ int, inst uint64, sub []byte) ([]byte, bool, error) {
	v, ok := s.k.mu.elems.Get(inst, sub)
	return v, ok, nil
}

func (s writeStore) ElemScan(_ int, inst uint64, from []byte, reverse bool, fn func(sub, val []byte) bool) error {
	s.k.mu.elems.Scan(inst, from, reverse, fn)
	return nil
}

func (s writeStore) ElemPut(_ int, inst uint64, sub, val []byte) error {
	s.k.saveElemUndo(inst, string(sub))
	s.k.mu.elems.Put(inst, sub, val)
	return nil
}

func (s writeStore) ElemDelete(_ int, inst uint64, sub []byte) error {
	s.k.saveElemUndo(inst, string(sub))
	s.k.mu.elems.Delete(inst, sub)
	return nil
}

// DropElems implements keyspace.Store. In memory it costs O(elements),
// for the undo log; the O(1) contract is Pebble's.
func (s writeStore) DropElems(_ int, inst uint64, _ int64) error {
	for sub := range s.k.mu.elems[inst] {
		s.k.saveElemUndo(inst, sub)
	}
	delete(s.k.mu.elems, inst)
	return nil
}

func (s readStore) ElemGet(_ int, inst uint64, sub []byte) ([]byte, bool, error) {
	v, ok := s.k.mu.elems.Get(inst, sub)
	return v, ok, nil
}

func (s readStore) ElemScan(_ int, inst uint64, from []byte, reverse bool, fn func(sub, val []byte) bool) error {
	s.k.mu.elems.Scan(inst, from, reverse, fn)
	return nil
}

func (s readStore) ElemPut(int, uint64, []byte, []byte) error { return errReadOnly }
func (s readStore) ElemDelete(int, uint64, []byte) error      { return errReadOnly }
func (s readStore) DropElems(int, uint64, int64) error        { return errReadOnly }
