package keyspace

import (
	"bytes"
	"slices"
)

// Elems is a map-backed set of collections' elements, by instance: the
// element storage of MapStore and of the memory state machine. Instances
// are unique across databases, so it needs no database number. It does
// nothing for speed (ElemScan sorts on every call).
type Elems map[uint64]map[string][]byte

// Get returns the value at sub of inst.
func (e Elems) Get(inst uint64, sub []byte) ([]byte, bool) {
	v, ok := e[inst][string(sub)]
	return v, ok
}

// Put stores a copy of val at sub of inst.
func (e Elems) Put(inst uint64, sub, val []byte) {
	m := e[inst]
	if m == nil {
		m = map[string][]byte{}
		e[inst] = m
	}
	m[string(sub)] = bytes.Clone(val)
}

// Delete removes sub of inst.
func (e Elems) Delete(inst uint64, sub []byte) {
	m := e[inst]
	delete(m, string(sub))
	if len(m) == 0 {
		delete(e, inst)
	}
}

// Scan is Store.ElemScan over inst's pairs.
func (e Elems) Scan(inst uint64, from []byte, reverse bool, fn func(sub, val []byte) bool) {
	m := e[inst]
	subs := make([]string, 0, len(m))
	for k := range m {
		if from != nil && (!reverse && k < string(from) || reverse && k > string(from)) {
			continue
		}
		subs = append(subs, k)
	}
	slices.Sort(subs)
	if reverse {
		slices.Reverse(subs)
	}
	for _, k := range subs {
		if !fn([]byte(k), m[k]) {
			return
		}
	}
}
