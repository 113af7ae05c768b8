package keyspace

import (
	"bytes"
	"cmp"
	"slices"
)

// MapStore is a Store over plain maps: the reference the state machines'
// stores are checked against, and the engine's own test store. It does
// nothing for durability or speed (Scan sorts on every call).
type MapStore struct {
	dbs   map[int]map[string]Record
	elems Elems
}

var _ Store = (*MapStore)(nil)

// NewMapStore returns an empty MapStore.
func NewMapStore() *MapStore {
	return &MapStore{dbs: map[int]map[string]Record{}, elems: Elems{}}
}

func (m *MapStore) db(n int) map[string]Record {
	if m.dbs[n] == nil {
		m.dbs[n] = map[string]Record{}
	}
	return m.dbs[n]
}

// Get implements Store.
func (m *MapStore) Get(db int, key []byte) (Record, bool, error) {
	r, ok := m.dbs[db][string(key)]
	return r, ok, nil
}

// Put implements Store.
func (m *MapStore) Put(db int, key []byte, r Record) error {
	r.Value = bytes.Clone(r.Value)
	m.db(db)[string(key)] = r
	return nil
}

// Stat implements Store.
func (m *MapStore) Stat(db int, key []byte) (Record, int, bool, error) {
	return WholeStat(m.Get(db, key))
}

// ReadAt implements Store.
func (m *MapStore) ReadAt(db int, key []byte, off int, dst []byte) error {
	copy(dst, m.dbs[db][string(key)].Value[off:])
	return nil
}

// WriteAt implements Store.
func (m *MapStore) WriteAt(db int, key []byte, r Record, off int, data []byte) error {
	r.Value = PatchValue(m.dbs[db][string(key)].Value, off, data)
	m.db(db)[string(key)] = r
	return nil
}

// Delete implements Store.
func (m *MapStore) Delete(db int, key []byte) error {
	delete(m.dbs[db], string(key))
	return nil
}

// Scan implements Store.
func (m *MapStore) Scan(db int, from uint64, fn func([]byte, Record) bool) error {
	ScanMap(m.dbs[db], from, fn)
	return nil
}

// ScanMap calls fn with the keys of m in Store.Scan's order, from the
// first whose hash is at least from, until fn returns false, their
// records without their values (as Store.Scan). It sorts on every call:
// for stores over maps that need not be fast.
func ScanMap(m map[string]Record, from uint64, fn func([]byte, Record) bool) {
	type hashed struct {
		h   uint64
		key string
	}
	var keys []hashed
	for k := range m {
		if h := Hash([]byte(k)); h >= from {
			keys = append(keys, hashed{h, k})
		}
	}
	slices.SortFunc(keys, func(a, b hashed) int {
		if c := cmp.Compare(a.h, b.h); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	for _, x := range keys {
		r := m[x.key]
		r.Value = nil
		if !fn([]byte(x.key), r) {
			break
		}
	}
}

// FlushDB implements Store.
func (m *MapStore) FlushDB(db int) error {
	for _, r := range m.dbs[db] {
		delete(m.elems, r.Inst)
	}
	delete(m.dbs, db)
	return nil
}

// SwapDB implements Store.
func (m *MapStore) SwapDB(a, b int) error {
	m.dbs[a], m.dbs[b] = m.dbs[b], m.dbs[a]
	return nil
}

// Len implements Store.
func (m *MapStore) Len(db int) (int64, int64, error) {
	var keys, exp int64
	for _, r := range m.dbs[db] {
		keys++
		if r.ExpireAt != 0 {
			exp++
		}
	}
	return keys, exp, nil
}

// ElemGet implements Store.
func (m *MapStore) ElemGet(_ int, inst uint64, sub []byte) ([]byte, bool, error) {
	v, ok := m.elems.Get(inst, sub)
	return v, ok, nil
}

// ElemPut implements Store.
func (m *MapStore) ElemPut(_ int, inst uint64, sub, val []byte) error {
	m.elems.Put(inst, sub, val)
	return nil
}

// ElemDelete implements Store.
func (m *MapStore) ElemDelete(_ int, inst uint64, sub []byte) error {
	m.elems.Delete(inst, sub)
	return nil
}

// ElemScan implements Store.
func (m *MapStore) ElemScan(_ int, inst uint64, from []byte, reverse bool, fn func(sub, val []byte) bool) error {
	m.elems.Scan(inst, from, reverse, fn)
	return nil
}

// DropElems implements Store.
func (m *MapStore) DropElems(_ int, inst uint64, _ int64) error {
	delete(m.elems, inst)
	return nil
}
