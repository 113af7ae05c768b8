package memory

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

var (
	_ ports.StateMachine = (*KV)(nil)
	_ ports.KVReader     = (*KV)(nil)
)

// KV is an in-memory ports.StateMachine over a map of byte keys, and the
// ports.KVReader of its applied state.
//
// It models durability like a store that writes without syncing: Apply
// changes the state at once, Sync (and Restore) make it durable, and Crash
// rolls back to the last durable point as a whole.
type KV struct {
	mu struct {
		sync.Mutex
		closed bool
		data   map[string][]byte
		meta   domain.SnapshotMeta
		// undo holds, for each key changed since the last durable point,
		// the value it had then; durableMeta is the applied point then.
		// Keeping an undo record rather than a second copy of the map makes
		// Sync cost O(keys changed), not O(all keys).
		undo        map[string]undoValue
		durableMeta domain.SnapshotMeta
	}
}

type undoValue struct {
	value   []byte
	present bool
}

// NewKV returns an empty state machine with the zero applied point.
func NewKV() *KV {
	k := &KV{}
	k.mu.data = map[string][]byte{}
	k.mu.undo = map[string]undoValue{}
	return k
}

// decoded is an entry checked and decoded before anything is applied, so
// that a bad batch changes nothing.
type decoded struct {
	entry      domain.Entry
	skip       bool
	cmd        domain.Command
	membership *domain.Membership
}

// Apply implements ports.StateMachine. Entries at or below the applied
// index are ignored (zero Result). An entry past applied+1 is a gap, a
// driver bug, and an error; so is an entry that fails to decode
// (domain.ErrCorrupt). Either error leaves the state unchanged: the whole
// batch is checked before any of it is applied.
//
// Result.N counts the keys set plus the keys that existed and were deleted.
func (k *KV) Apply(entries []domain.Entry) ([]domain.Result, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return nil, fmt.Errorf("memory kv: apply: %w", domain.ErrClosed)
	}
	batch := make([]decoded, len(entries))
	applied := k.mu.meta.Index
	for i, e := range entries {
		batch[i].entry = e
		if e.Index <= applied {
			batch[i].skip = true
			continue
		}
		if e.Index != applied+1 {
			return nil, fmt.Errorf("memory kv: apply: entry %d follows applied index %d: gap", e.Index, applied)
		}
		switch e.Type {
		case domain.EntryNormal:
			cmd, err := domain.DecodeCommand(e.Data)
			if err != nil {
				return nil, fmt.Errorf("memory kv: apply entry %d: %w", e.Index, err)
			}
			batch[i].cmd = cmd
		case domain.EntryBlank:
		case domain.EntryMembership:
			m, err := domain.DecodeMembership(e.Data)
			if err != nil {
				return nil, fmt.Errorf("memory kv: apply entry %d: %w", e.Index, err)
			}
			batch[i].membership = &m
		default:
			return nil, fmt.Errorf("memory kv: apply entry %d: unknown type %s: %w", e.Index, e.Type, domain.ErrCorrupt)
		}
		applied = e.Index
	}

	results := make([]domain.Result, len(entries))
	for i, d := range batch {
		if d.skip {
			continue
		}
		var n int64
		for _, op := range d.cmd.Ops {
			key := string(op.Key)
			switch op.Kind {
			case domain.OpSet:
				k.saveUndo(key)
				// Decoded values alias the entry's Data; keep a private copy.
				k.mu.data[key] = bytes.Clone(op.Value)
				n++
			case domain.OpDel:
				if _, ok := k.mu.data[key]; ok {
					k.saveUndo(key)
					delete(k.mu.data, key)
					n++
				}
			}
		}
		results[i].N = n
		k.mu.meta.Index, k.mu.meta.Term = d.entry.Index, d.entry.Term
		if d.membership != nil {
			k.mu.meta.Membership = *d.membership
		}
	}
	return results, nil
}

// saveUndo records key's durable value the first time it changes after a
// durable point.
func (k *KV) saveUndo(key string) {
	if _, ok := k.mu.undo[key]; ok {
		return
	}
	v, ok := k.mu.data[key]
	k.mu.undo[key] = undoValue{value: v, present: ok}
}

// Applied implements ports.StateMachine.
func (k *KV) Applied() (domain.SnapshotMeta, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return domain.SnapshotMeta{}, fmt.Errorf("memory kv: applied: %w", domain.ErrClosed)
	}
	return cloneMeta(k.mu.meta), nil
}

// Sync implements ports.StateMachine.
func (k *KV) Sync() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return fmt.Errorf("memory kv: sync: %w", domain.ErrClosed)
	}
	k.markDurable()
	return nil
}

func (k *KV) markDurable() {
	if len(k.mu.undo) > 0 {
		k.mu.undo = map[string]undoValue{}
	}
	k.mu.durableMeta = cloneMeta(k.mu.meta)
}

// Crash simulates a crash and a restart: the state rolls back to the last
// Sync or Restore, as a whole. It also reopens a closed KV.
func (k *KV) Crash() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mu.closed = false
	for key, u := range k.mu.undo {
		if u.present {
			k.mu.data[key] = u.value
		} else {
			delete(k.mu.data, key)
		}
	}
	k.mu.meta = cloneMeta(k.mu.durableMeta)
	k.mu.undo = map[string]undoValue{}
}

// Close implements ports.StateMachine. It does not sync.
func (k *KV) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return fmt.Errorf("memory kv: close: %w", domain.ErrClosed)
	}
	k.mu.closed = true
	return nil
}

// Get implements ports.KVReader. The value returned is the caller's.
func (k *KV) Get(key []byte) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return nil, fmt.Errorf("memory kv: get %q: %w", key, domain.ErrClosed)
	}
	v, ok := k.mu.data[string(key)]
	if !ok {
		return nil, fmt.Errorf("memory kv: get %q: %w", key, domain.ErrNotFound)
	}
	return bytes.Clone(v), nil
}

// Len returns the number of keys.
func (k *KV) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.mu.data)
}

// Digest returns a hash of every key and value and of the applied index,
// for tests that compare replicas: two KVs that applied the same entries
// have the same Digest. It does not depend on map order.
func (k *KV) Digest() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	h := fnv.New64a()
	var buf []byte
	buf = binary.BigEndian.AppendUint64(buf, uint64(k.mu.meta.Index))
	for _, key := range slices.Sorted(maps.Keys(k.mu.data)) {
		v := k.mu.data[key]
		buf = binary.AppendUvarint(buf, uint64(len(key)))
		buf = append(buf, key...)
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
		h.Write(buf)
		buf = buf[:0]
	}
	h.Write(buf)
	return h.Sum64()
}

// The snapshot image:
//
//	magic "SKV1"
//	uvarint index, uvarint term, uvarint len + EncodeMembership bytes
//	uvarint key count
//	per key, in ascending key order: uvarint len + key, uvarint len + value
//	crc32c (Castagnoli) of everything above, 4 bytes big-endian
//
// Sorted keys make the image a function of the state alone, so two
// replicas at the same point write identical images.
const snapshotMagic = "SKV1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot implements ports.StateMachine. It copies the state's shape under
// the lock and writes without it, so Apply may run meanwhile: stored
// values are never modified in place, only replaced.
func (k *KV) Snapshot(w io.Writer) (domain.SnapshotMeta, error) {
	k.mu.Lock()
	if k.mu.closed {
		k.mu.Unlock()
		return domain.SnapshotMeta{}, fmt.Errorf("memory kv: snapshot: %w", domain.ErrClosed)
	}
	meta := cloneMeta(k.mu.meta)
	keys := slices.Sorted(maps.Keys(k.mu.data))
	values := make([][]byte, len(keys))
	for i, key := range keys {
		values[i] = k.mu.data[key]
	}
	k.mu.Unlock()

	crc := crc32.New(castagnoli)
	bw := bufio.NewWriter(io.MultiWriter(w, crc))
	var buf []byte
	buf = append(buf, snapshotMagic...)
	buf = binary.AppendUvarint(buf, uint64(meta.Index))
	buf = binary.AppendUvarint(buf, uint64(meta.Term))
	mb := domain.EncodeMembership(meta.Membership)
	buf = binary.AppendUvarint(buf, uint64(len(mb)))
	buf = append(buf, mb...)
	buf = binary.AppendUvarint(buf, uint64(len(keys)))
	bw.Write(buf)
	for i, key := range keys {
		buf = binary.AppendUvarint(buf[:0], uint64(len(key)))
		bw.Write(buf)
		bw.WriteString(key)
		buf = binary.AppendUvarint(buf[:0], uint64(len(values[i])))
		bw.Write(buf)
		bw.Write(values[i])
	}
	// bufio.Writer remembers the first write error and returns it here.
	if err := bw.Flush(); err != nil {
		return domain.SnapshotMeta{}, fmt.Errorf("memory kv: snapshot at %d: %w", meta.Index, err)
	}
	if _, err := w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return domain.SnapshotMeta{}, fmt.Errorf("memory kv: snapshot at %d: %w", meta.Index, err)
	}
	return meta, nil
}

// Restore implements ports.StateMachine. The image is checked whole
// (checksum, structure, sorted keys, metadata equal to meta) before it
// replaces anything, so a bad image returns domain.ErrCorrupt and leaves
// the state as it was. A restored state is durable.
func (k *KV) Restore(meta domain.SnapshotMeta, r io.Reader) error {
	k.mu.Lock()
	closed := k.mu.closed
	k.mu.Unlock()
	if closed {
		return fmt.Errorf("memory kv: restore at %d: %w", meta.Index, domain.ErrClosed)
	}
	image, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("memory kv: restore at %d: read: %w", meta.Index, err)
	}
	data, got, err := decodeImage(image)
	if err != nil {
		return fmt.Errorf("memory kv: restore at %d: %w", meta.Index, err)
	}
	if !metaEqual(got, meta) {
		return fmt.Errorf("memory kv: restore: %w: image is at index %d term %d membership %v, want index %d term %d membership %v",
			domain.ErrCorrupt, got.Index, got.Term, got.Membership, meta.Index, meta.Term, meta.Membership)
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return fmt.Errorf("memory kv: restore at %d: %w", meta.Index, domain.ErrClosed)
	}
	k.mu.data = data
	k.mu.meta = got
	k.markDurable()
	return nil
}

// decodeImage parses and checks a snapshot image. Every failure wraps
// domain.ErrCorrupt.
func decodeImage(b []byte) (map[string][]byte, domain.SnapshotMeta, error) {
	fail := func(format string, args ...any) (map[string][]byte, domain.SnapshotMeta, error) {
		return nil, domain.SnapshotMeta{}, fmt.Errorf("%w: snapshot image: %s", domain.ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(b) < len(snapshotMagic)+4 {
		return fail("%d bytes is too short", len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return fail("checksum %08x, want %08x", got, sum)
	}
	if string(body[:len(snapshotMagic)]) != snapshotMagic {
		return fail("bad magic %q", body[:len(snapshotMagic)])
	}
	body = body[len(snapshotMagic):]
	var bad bool
	uvarint := func() uint64 {
		v, n := binary.Uvarint(body)
		if n <= 0 {
			bad = true
			return 0
		}
		body = body[n:]
		return v
	}
	readBytes := func(limit uint64) []byte {
		l := uvarint()
		if bad || l > limit || l > uint64(len(body)) {
			bad = true
			return nil
		}
		out := body[:l]
		body = body[l:]
		return out
	}
	var meta domain.SnapshotMeta
	meta.Index = domain.Index(uvarint())
	meta.Term = domain.Term(uvarint())
	mb := readBytes(uint64(len(body)))
	if bad {
		return fail("bad header")
	}
	m, err := domain.DecodeMembership(mb)
	if err != nil {
		return nil, domain.SnapshotMeta{}, fmt.Errorf("snapshot image: %w", err)
	}
	meta.Membership = m
	count := uvarint()
	// Each key takes at least two bytes (two zero lengths).
	if bad || count > uint64(len(body))/2 {
		return fail("bad key count")
	}
	data := make(map[string][]byte, count)
	var prev []byte
	for i := uint64(0); i < count; i++ {
		key := readBytes(domain.MaxKeySize)
		value := readBytes(domain.MaxValueSize)
		if bad {
			return fail("bad key %d of %d", i, count)
		}
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			return fail("key %d out of order", i)
		}
		prev = key
		data[string(key)] = bytes.Clone(value)
	}
	if len(body) != 0 {
		return fail("%d trailing bytes", len(body))
	}
	return data, meta, nil
}

func metaEqual(a, b domain.SnapshotMeta) bool {
	return a.Index == b.Index && a.Term == b.Term &&
		slices.Equal(a.Membership.Voters, b.Membership.Voters) &&
		slices.Equal(a.Membership.Learners, b.Membership.Learners)
}

func cloneMeta(m domain.SnapshotMeta) domain.SnapshotMeta {
	m.Membership = m.Membership.Clone()
	return m
}
