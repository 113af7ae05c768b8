package memory

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

var _ ports.Transport = (*Transport)(nil)

// DefaultInboxSize is NetworkOptions.InboxSize's default.
const DefaultInboxSize = 4096

// NetworkOptions configures a Network. The zero value works.
type NetworkOptions struct {
	// Seed seeds the one random source behind every fault decision (drop,
	// duplicate, delay). Default 0, which is a valid seed.
	Seed uint64
	// InboxSize is the capacity of each endpoint's inbox; a message that
	// arrives at a full inbox is dropped. Default DefaultInboxSize.
	InboxSize int
	// Logger receives a debug line per dropped message. Default: discard.
	Logger *zerolog.Logger
}

// EnsureDefaults fills in the default of every zero field.
func (o *NetworkOptions) EnsureDefaults() {
	if o.InboxSize == 0 {
		o.InboxSize = DefaultInboxSize
	}
	if o.Logger == nil {
		nop := zerolog.Nop()
		o.Logger = &nop
	}
}

// Validate reports options that cannot work.
func (o NetworkOptions) Validate() error {
	if o.InboxSize < 0 {
		return fmt.Errorf("memory network: InboxSize %d is negative", o.InboxSize)
	}
	return nil
}

// NetworkStats counts messages. A duplicated message is delivered (or
// dropped) twice, so Delivered+Dropped may exceed Sent.
type NetworkStats struct {
	// Sent counts Send calls that were accepted (not ErrClosed).
	Sent uint64
	// Delivered counts messages put in an inbox.
	Delivered uint64
	// Dropped counts messages lost: to the drop rate, a partition or
	// disconnection, an unknown or closed destination, or a full inbox.
	Dropped uint64
	// Duplicated counts extra copies made by the duplicate rate.
	Duplicated uint64
}

// Network is an in-process network connecting Transports, with faults that
// can be switched at run time: random drops, delays (which reorder),
// duplicates, partitions and disconnected nodes. Every method is safe for
// concurrent use. All randomness comes from one source seeded by
// NetworkOptions.Seed; with delays the goroutine schedule still decides
// delivery order, so only a delay-free network is fully reproducible.
type Network struct {
	opts NetworkOptions
	// stop is closed by Close to cancel delayed deliveries; wg counts them.
	stop chan struct{}
	wg   sync.WaitGroup
	mu   struct {
		sync.Mutex
		closed    bool
		rng       *rand.Rand
		endpoints map[domain.NodeID]*Transport
		dropRate  float64
		dupRate   float64
		minDelay  time.Duration
		maxDelay  time.Duration
		// group maps each node named by Partition to its group; nil when
		// there is no partition.
		group map[domain.NodeID]int
		// cut holds the nodes cut off by Disconnect or Isolate.
		cut   map[domain.NodeID]bool
		stats NetworkStats
	}
}

// NewNetwork returns a fault-free network. It panics on invalid options
// (see NetworkOptions.Validate): that is a bug in the test that calls it.
func NewNetwork(opts NetworkOptions) *Network {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	n := &Network{opts: opts, stop: make(chan struct{})}
	n.mu.rng = rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5e5a7))
	n.mu.endpoints = map[domain.NodeID]*Transport{}
	n.mu.cut = map[domain.NodeID]bool{}
	return n
}

// Endpoint returns node id's Transport, creating it on first use. After
// that Transport is closed, Endpoint creates a new one: a node restarting
// gets a fresh inbox (messages in flight to the old one go to the new).
// On a closed Network it returns a closed Transport.
func (n *Network) Endpoint(id domain.NodeID) *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.mu.endpoints[id]; ok && !t.closed {
		return t
	}
	t := &Transport{net: n, id: id, inbox: make(chan domain.Message, n.opts.InboxSize)}
	if n.mu.closed {
		t.closed = true
		close(t.inbox)
		return t
	}
	n.mu.endpoints[id] = t
	return t
}

// SetDropRate makes each message lost with probability p in [0,1].
func (n *Network) SetDropRate(p float64) {
	checkRate("drop", p)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.dropRate = p
}

// SetDuplicateRate makes each message delivered twice with probability p
// in [0,1].
func (n *Network) SetDuplicateRate(p float64) {
	checkRate("duplicate", p)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.dupRate = p
}

func checkRate(what string, p float64) {
	if !(p >= 0 && p <= 1) {
		panic(fmt.Sprintf("memory network: %s rate %v outside [0,1]", what, p))
	}
}

// SetDelay delays each message by a duration drawn uniformly from
// [lo,hi]. Messages then overtake each other, as on a real network.
// SetDelay(0, 0) delivers at once, inside Send.
func (n *Network) SetDelay(lo, hi time.Duration) {
	if lo < 0 || hi < lo {
		panic(fmt.Sprintf("memory network: delay [%v,%v] invalid", lo, hi))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.minDelay, n.mu.maxDelay = lo, hi
}

// Partition splits the network: messages flow only between nodes of one
// group, and nodes named in no group are isolated. It replaces any earlier
// partition; nodes cut off by Disconnect or Isolate stay cut off.
func (n *Network) Partition(groups ...[]domain.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.group = map[domain.NodeID]int{}
	for g, ids := range groups {
		for _, id := range ids {
			n.mu.group[id] = g
		}
	}
}

// Isolate cuts id off from every other node; it is Disconnect by its
// partition name. Heal or Reconnect undoes it.
func (n *Network) Isolate(id domain.NodeID) { n.Disconnect(id) }

// Disconnect cuts id off: nothing it sends or is sent arrives, including
// messages already in flight. Reconnect or Heal undoes it.
func (n *Network) Disconnect(id domain.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.cut[id] = true
}

// Reconnect undoes Disconnect (or Isolate) of id. A partition in force
// still applies.
func (n *Network) Reconnect(id domain.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.mu.cut, id)
}

// Heal restores full connectivity: no partition, no node cut off. Drop,
// duplicate and delay settings are kept.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.group = nil
	clear(n.mu.cut)
}

// Stats returns the message counters.
func (n *Network) Stats() NetworkStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.stats
}

// Close closes every endpoint, cancels every delayed delivery and waits
// until their goroutines have ended. Closing again does nothing, so it can
// be passed to t.Cleanup as well as deferred.
func (n *Network) Close() {
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return
	}
	n.mu.closed = true
	close(n.stop)
	for _, t := range n.mu.endpoints {
		t.closeLocked()
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// connectedLocked reports whether a message may pass from a to b now.
func (n *Network) connectedLocked(a, b domain.NodeID) bool {
	if n.mu.cut[a] || n.mu.cut[b] {
		return false
	}
	if a == b || n.mu.group == nil {
		return true
	}
	ga, oka := n.mu.group[a]
	gb, okb := n.mu.group[b]
	return oka && okb && ga == gb
}

// sendLocked routes m, already stamped with its sender.
func (n *Network) sendLocked(m domain.Message) {
	n.mu.stats.Sent++
	if !n.connectedLocked(m.From, m.To) {
		n.dropLocked(m, "partitioned")
		return
	}
	if n.mu.dropRate > 0 && n.mu.rng.Float64() < n.mu.dropRate {
		n.dropLocked(m, "drop rate")
		return
	}
	copies := 1
	if n.mu.dupRate > 0 && n.mu.rng.Float64() < n.mu.dupRate {
		copies = 2
		n.mu.stats.Duplicated++
	}
	for range copies {
		// Copy per delivery: no two nodes, and no two copies, share memory.
		c := cloneMessage(m)
		d := n.mu.minDelay
		if span := n.mu.maxDelay - n.mu.minDelay; span > 0 {
			d += time.Duration(n.mu.rng.Int64N(int64(span) + 1))
		}
		if d == 0 {
			n.deliverLocked(c)
			continue
		}
		n.wg.Add(1)
		go n.deliverAfter(c, d)
	}
}

func (n *Network) deliverAfter(m domain.Message, d time.Duration) {
	defer n.wg.Done()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		n.mu.Lock()
		defer n.mu.Unlock()
		n.deliverLocked(m)
	case <-n.stop:
	}
}

// deliverLocked puts m in its destination's inbox, checking connectivity
// again: a partition made while m was in flight stops it.
func (n *Network) deliverLocked(m domain.Message) {
	if n.mu.closed {
		return
	}
	if !n.connectedLocked(m.From, m.To) {
		n.dropLocked(m, "partitioned in flight")
		return
	}
	t, ok := n.mu.endpoints[m.To]
	if !ok || t.closed {
		n.dropLocked(m, "no such endpoint")
		return
	}
	select {
	case t.inbox <- m:
		n.mu.stats.Delivered++
	default:
		n.dropLocked(m, "inbox full")
	}
}

func (n *Network) dropLocked(m domain.Message, why string) {
	n.mu.stats.Dropped++
	n.opts.Logger.Debug().Stringer("msg", m).Str("reason", why).Msg("memory network: dropped message")
}

// Transport is one node's endpoint on a Network; it implements
// ports.Transport. Send never blocks.
type Transport struct {
	net   *Network
	id    domain.NodeID
	inbox chan domain.Message
	// closed is guarded by net.mu: closing the inbox and sending to it must
	// not race.
	closed bool
}

// Send implements ports.Transport. It sets m.From to this endpoint's node,
// deep-copies m, and queues it (or drops it: see Network). It returns
// domain.ErrClosed once this endpoint or the network is closed. A snapshot
// image held in a file (Snapshot.File) is read into Snapshot.Data and the
// file removed, whatever Send returns: messages in an in-process network
// live in memory, and the receiver owns no file.
func (t *Transport) Send(m domain.Message) error {
	if m.Snapshot != nil && m.Snapshot.File != "" {
		s, err := loadImage(*m.Snapshot)
		if err != nil {
			t.net.opts.Logger.Warn().Err(err).Stringer("msg", m).Msg("memory network: snapshot image unreadable, message dropped")
			return nil
		}
		m.Snapshot = &s
	}
	n := t.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if t.closed || n.mu.closed {
		return fmt.Errorf("memory transport %d: send %s to %d: %w", t.id, m.Type, m.To, domain.ErrClosed)
	}
	m.From = t.id
	n.sendLocked(m)
	return nil
}

// Receive implements ports.Transport.
func (t *Transport) Receive() <-chan domain.Message { return t.inbox }

// Close implements ports.Transport: it closes the inbox; messages still in
// flight to this node are dropped (or go to its next Endpoint).
func (t *Transport) Close() error {
	n := t.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if t.closed {
		return fmt.Errorf("memory transport %d: close: %w", t.id, domain.ErrClosed)
	}
	t.closeLocked()
	return nil
}

func (t *Transport) closeLocked() {
	if !t.closed {
		t.closed = true
		close(t.inbox)
	}
}

func cloneMessage(m domain.Message) domain.Message {
	if m.Entries != nil {
		es := make([]domain.Entry, len(m.Entries))
		for i, e := range m.Entries {
			es[i] = cloneEntry(e)
		}
		m.Entries = es
	}
	if m.Snapshot != nil {
		s := *m.Snapshot
		s.Meta.Membership = s.Meta.Membership.Clone()
		s.Data = bytes.Clone(s.Data)
		m.Snapshot = &s
	}
	m.Context = bytes.Clone(m.Context)
	return m
}

// loadImage returns s with its image file read into Data, and removes the
// file.
func loadImage(s domain.Snapshot) (domain.Snapshot, error) {
	path := s.File
	defer func() { _ = os.Remove(path) }()
	data, err := os.ReadFile(path)
	if err != nil {
		return domain.Snapshot{}, fmt.Errorf("memory network: snapshot image: %w", err)
	}
	s.Data, s.File = data, ""
	return s, nil
}
