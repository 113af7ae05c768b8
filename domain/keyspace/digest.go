package keyspace

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// Digest returns a SHA-256 over the content of every client database of
// st: each key with its type, its deadline and its value (a string's
// bytes, a collection's elements in order), database by database, keys
// in the store's scan order ((Hash(key), key), the same on every store).
// Keys past their deadline but not yet reaped are included, as stored.
// Versions, instance ids, list positions, tombstones and the engine's own
// state are not: two stores that hold the same data give the same digest
// whatever history brought them there, and any difference in a key, a
// type, a value, an element or a deadline gives another (SESHAT.DIGEST).
//
// The caller gives a store that does not change during the call (a View).
func Digest(st Store) ([]byte, error) {
	h := sha256.New()
	type keyRec struct {
		key []byte
		r   Record
	}
	var keys []keyRec
	for db := range MaxClientDatabases {
		keys = keys[:0]
		err := st.Scan(db, 0, func(key []byte, r Record) bool {
			keys = append(keys, keyRec{key: bytes.Clone(key), r: r})
			return true
		})
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			continue
		}
		writeUint(h, 0xdb)
		writeUint(h, uint64(db))
		for _, k := range keys {
			writeBytes(h, k.key)
			writeUint(h, uint64(k.r.Type))
			writeUint(h, uint64(k.r.ExpireAt))
			if k.r.Type == TypeString {
				// One value at a time: Scan leaves them out.
				r, _, err := st.Get(db, k.key)
				if err != nil {
					return nil, err
				}
				writeBytes(h, r.Value)
				continue
			}
			writeUint(h, uint64(k.r.Count))
			list := k.r.Type == TypeList
			err := st.ElemScan(db, k.r.Inst, nil, false, func(sub, val []byte) bool {
				if !list { // a list's sub-keys are positions: its order is its content
					writeBytes(h, sub)
				}
				writeBytes(h, val)
				return true
			})
			if err != nil {
				return nil, err
			}
			writeUint(h, 0xe0) // the end of the elements
		}
	}
	return h.Sum(nil), nil
}

func writeUint(h hash.Hash, v uint64) {
	var b [binary.MaxVarintLen64]byte
	h.Write(b[:binary.PutUvarint(b[:], v)])
}

func writeBytes(h hash.Hash, p []byte) {
	writeUint(h, uint64(len(p)))
	h.Write(p)
}
