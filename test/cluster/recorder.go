package cluster

import (
	"io"
	"sync"

	"github.com/seshat-kv/seshat/domain"
)

// recorder wraps a node's state machine and reports every entry it applies
// to the cluster, which checks that no two nodes apply different entries at
// one index. It also checks that the node applies indexes in order, with
// no gap, and counts snapshot installs.
type recorder struct {
	KV
	c  *Cluster
	i  int
	kv KV

	mu struct {
		sync.Mutex
		applied  domain.Index
		restores int
	}
}

func newRecorder(c *Cluster, i int, kv KV) *recorder {
	r := &recorder{KV: kv, c: c, i: i, kv: kv}
	meta, err := kv.Applied()
	if err != nil {
		c.violation("node %d: applied: %v", c.id(i), err)
	}
	r.mu.applied = meta.Index
	return r
}

func (r *recorder) Apply(ents []domain.Entry) ([]domain.Result, error) {
	res, err := r.kv.Apply(ents)
	if err != nil {
		return res, err
	}
	r.mu.Lock()
	var fresh []domain.Entry
	var gaps [][2]domain.Index
	for _, e := range ents {
		if e.Index <= r.mu.applied {
			continue
		}
		if e.Index != r.mu.applied+1 {
			gaps = append(gaps, [2]domain.Index{e.Index, r.mu.applied})
		}
		r.mu.applied = e.Index
		fresh = append(fresh, e)
	}
	r.mu.Unlock()
	// Reported with the recorder's lock released: the cluster takes it
	// while holding its own.
	for _, g := range gaps {
		r.c.violation("node %d applied index %d after %d", r.c.id(r.i), g[0], g[1])
	}
	r.c.recordApply(r.i, fresh)
	return res, nil
}

func (r *recorder) Restore(meta domain.SnapshotMeta, rd io.Reader) error {
	if err := r.kv.Restore(meta, rd); err != nil {
		return err
	}
	r.mu.Lock()
	r.mu.applied = meta.Index
	r.mu.restores++
	r.mu.Unlock()
	// The cluster's lock is taken after the recorder's is released: the
	// cluster takes the recorder's while holding its own (NCommitted), so
	// holding both here would deadlock.
	r.c.mu.Lock()
	r.c.mu.restores[r.i]++
	r.c.mu.Unlock()
	return nil
}

func (r *recorder) appliedIndex() domain.Index {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.applied
}

func (r *recorder) restores() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.restores
}
