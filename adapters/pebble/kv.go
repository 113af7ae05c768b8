package pebble

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

var (
	_ ports.StateMachine = (*KV)(nil)
	_ ports.KVReader     = (*KV)(nil)
)

// KV is the replicated key-value state machine. User data lives under the
// data prefix and the current generation (see Restore); the applied point
// lives under the meta prefix and changes in the same batch as the data.
// Get it from DB.StateMachine.
type KV struct {
	d      *DB
	closed atomic.Bool

	// mu serializes Apply and Restore and guards the cached applied point.
	// Get and Snapshot hold it for reading only to learn the generation.
	mu struct {
		sync.RWMutex
		meta domain.SnapshotMeta
		gen  uint64
	}
}

const metaVersion = 1

// meta payload: version, index, term, generation (8 bytes each, big
// endian, after the version byte), then the encoded membership.
func encodeMeta(m domain.SnapshotMeta, gen uint64) []byte {
	p := make([]byte, 25, 64)
	p[0] = metaVersion
	binary.BigEndian.PutUint64(p[1:], uint64(m.Index))
	binary.BigEndian.PutUint64(p[9:], uint64(m.Term))
	binary.BigEndian.PutUint64(p[17:], gen)
	p = append(p, domain.EncodeMembership(m.Membership)...)
	return seal(keyApplied, p)
}

func decodeMeta(key, rec []byte) (domain.SnapshotMeta, uint64, error) {
	p, ok := unseal(key, rec)
	if !ok || len(p) < 25 || p[0] != metaVersion {
		return domain.SnapshotMeta{}, 0, fmt.Errorf("pebble kv: meta record %q: %w: checksum mismatch", key, domain.ErrCorrupt)
	}
	mem, err := domain.DecodeMembership(p[25:])
	if err != nil {
		return domain.SnapshotMeta{}, 0, fmt.Errorf("pebble kv: meta record %q: %w", key, err)
	}
	m := domain.SnapshotMeta{
		Index:      domain.Index(binary.BigEndian.Uint64(p[1:])),
		Term:       domain.Term(binary.BigEndian.Uint64(p[9:])),
		Membership: mem,
	}
	return m, binary.BigEndian.Uint64(p[17:]), nil
}

// load reads the applied point and deletes what an interrupted Restore
// left behind: a restore marker and rows of any generation but the
// current one.
func (kv *KV) load() error {
	d := kv.d
	rec, ok, err := d.get(d.db, keyApplied)
	if err != nil {
		return fmt.Errorf("pebble kv: read applied: %w", err)
	}
	if ok {
		if kv.mu.meta, kv.mu.gen, err = decodeMeta(keyApplied, rec); err != nil {
			return err
		}
	}
	b := d.db.NewBatch()
	defer b.Close()
	if _, ok, err := d.get(d.db, keyRestore); err != nil {
		return fmt.Errorf("pebble kv: read restore marker: %w", err)
	} else if ok {
		d.log.Warn().Uint64("applied", uint64(kv.mu.meta.Index)).Msg("discarding the rows of a restore interrupted by a crash")
		_ = b.Delete(keyRestore, nil)
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: dataLower, UpperBound: dataUpper})
	if err != nil {
		return fmt.Errorf("pebble kv: %w", classify(err))
	}
	defer it.Close()
	genOf := func(k []byte) uint64 {
		if len(k) < 9 {
			return 0
		}
		return binary.BigEndian.Uint64(k[1:9])
	}
	gen := kv.mu.gen
	if it.First() && genOf(it.Key()) != gen {
		_ = b.DeleteRange(dataLower, dataPrefix(gen), nil)
	}
	if it.Last() && genOf(it.Key()) != gen {
		_ = b.DeleteRange(dataPrefix(gen+1), dataUpper, nil)
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("pebble kv: %w", classify(err))
	}
	if b.Empty() {
		return nil
	}
	// Not synced: if this is lost in a crash, the next Open does it again.
	if err := d.commit(b, false); err != nil {
		return fmt.Errorf("pebble kv: clean up stale generations: %w", err)
	}
	return nil
}

// Apply implements ports.StateMachine. The entries' data and the new
// applied point go into one Pebble batch, committed without a sync (the
// log holds the entries durably and Apply is idempotent). If any entry is
// corrupt, or the first new entry does not follow the applied index,
// nothing is applied. Result.N counts the keys set and the existing keys
// deleted.
func (kv *KV) Apply(entries []domain.Entry) (results []domain.Result, err error) {
	err = kv.d.do(&kv.closed, "apply", func() error {
		kv.mu.Lock()
		defer kv.mu.Unlock()
		results = make([]domain.Result, len(entries))
		meta := kv.mu.meta
		gen := kv.mu.gen
		b := kv.d.db.NewBatch()
		defer b.Close()
		// exists tracks keys written earlier in this batch, whose state the
		// DB does not show yet, for counting deletes.
		exists := map[string]bool{}
		applied := false
		for k, e := range entries {
			if e.Index <= meta.Index {
				continue
			}
			if e.Index != meta.Index+1 {
				return fmt.Errorf("pebble kv: apply entry %d after %d: entries must be contiguous", e.Index, meta.Index)
			}
			switch e.Type {
			case domain.EntryNormal:
				cmd, err := domain.DecodeCommand(e.Data)
				if err != nil {
					return fmt.Errorf("pebble kv: apply entry %d: %w", e.Index, err)
				}
				var n int64
				for _, op := range cmd.Ops {
					key := dataKey(gen, op.Key)
					switch op.Kind {
					case domain.OpSet:
						if err := b.Set(key, seal(key, op.Value), nil); err != nil {
							return fmt.Errorf("pebble kv: apply entry %d: %w", e.Index, classify(err))
						}
						exists[string(op.Key)] = true
						n++
					case domain.OpDel:
						had, seen := exists[string(op.Key)]
						if !seen {
							_, ok, err := kv.d.get(kv.d.db, key)
							if err != nil {
								return fmt.Errorf("pebble kv: apply entry %d: %w", e.Index, err)
							}
							had = ok
						}
						if had {
							n++
						}
						exists[string(op.Key)] = false
						if err := b.Delete(key, nil); err != nil {
							return fmt.Errorf("pebble kv: apply entry %d: %w", e.Index, classify(err))
						}
					}
				}
				results[k].N = n
			case domain.EntryBlank:
			case domain.EntryMembership:
				m, err := domain.DecodeMembership(e.Data)
				if err != nil {
					return fmt.Errorf("pebble kv: apply entry %d: %w", e.Index, err)
				}
				meta.Membership = m
			default:
				return fmt.Errorf("pebble kv: apply entry %d: unknown type %s: %w", e.Index, e.Type, domain.ErrCorrupt)
			}
			meta.Index, meta.Term = e.Index, e.Term
			applied = true
		}
		if !applied {
			return nil
		}
		if err := b.Set(keyApplied, encodeMeta(meta, gen), nil); err != nil {
			return fmt.Errorf("pebble kv: apply: %w", classify(err))
		}
		if err := kv.d.commit(b, false); err != nil {
			return fmt.Errorf("pebble kv: apply up to %d: %w", meta.Index, err)
		}
		kv.mu.meta = meta
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// Applied implements ports.StateMachine.
func (kv *KV) Applied() (m domain.SnapshotMeta, err error) {
	err = kv.d.do(&kv.closed, "applied", func() error {
		kv.mu.RLock()
		defer kv.mu.RUnlock()
		m = kv.mu.meta
		m.Membership = m.Membership.Clone()
		return nil
	})
	return m, err
}

// Get implements ports.KVReader. A stored value failing its checksum is an
// error wrapping domain.ErrCorrupt naming the key. Get waits while a
// Restore runs, so that it never reads a key from the image being replaced
// just as it is deleted.
func (kv *KV) Get(key []byte) (val []byte, err error) {
	err = kv.d.do(&kv.closed, "get", func() error {
		kv.mu.RLock()
		gen := kv.mu.gen
		kv.mu.RUnlock()
		k := dataKey(gen, key)
		rec, ok, err := kv.d.get(kv.d.db, k)
		if err != nil {
			return fmt.Errorf("pebble kv: get %q: %w", key, err)
		}
		if !ok {
			return fmt.Errorf("pebble kv: get %q: %w", key, domain.ErrNotFound)
		}
		p, good := unseal(k, rec)
		if !good {
			return fmt.Errorf("pebble kv: key %q: %w: checksum mismatch", key, domain.ErrCorrupt)
		}
		val = p
		return nil
	})
	return val, err
}

// Sync implements ports.StateMachine with one WAL sync (shared with the
// log), or none if nothing was written since the last. An error is fatal.
func (kv *KV) Sync() error {
	return kv.d.do(&kv.closed, "kv sync", func() error {
		if err := kv.d.sync(); err != nil {
			return fmt.Errorf("pebble kv: sync: %w", err)
		}
		return nil
	})
}

// Close implements ports.StateMachine. It closes this store only; DB.Close
// closes the DB. Closing twice returns domain.ErrClosed.
func (kv *KV) Close() error {
	if kv.closed.Swap(true) {
		return fmt.Errorf("pebble: close: %w", domain.ErrClosed)
	}
	return nil
}
