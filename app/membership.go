package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

// Membership changes online (SESHAT.MEMBER). The address book (every
// member's peer and client address, the retired ids) lives in the
// replicated state (keyspace.MemberCommand): a change writes the book
// with an ordinary entry first, then proposes the Membership entry, so
// every node, and every snapshot, has a member's addresses before the
// member. Members reconciles each node's transport and client addresses
// with the applied book, and on the leader promotes caught-up learners.

// DefaultPromoteLag is how close a learner's match index must be to the
// leader's last index (in entries) for the leader to promote it; it must
// also be active and replicating (not receiving a snapshot).
const DefaultPromoteLag = 100

// DefaultMembersInterval is how often Members reconciles the transport
// with the applied address book and looks for learners to promote.
const DefaultMembersInterval = 100 * time.Millisecond

// PeerSet is what Members needs of the peer transport (adapters/tcp's
// Transport implements it).
type PeerSet interface {
	SetPeer(id domain.NodeID, addr string) error
	RemovePeer(id domain.NodeID) error
}

// AdminRelay carries an admin command to another node's client address
// over a relayed connection (adapters/relay's Client implements it).
type AdminRelay interface {
	Command(ctx context.Context, addr string, args ...[]byte) (domain.Reply, error)
}

// MemberNode is a Node that can change membership (*node.Node).
type MemberNode interface {
	Node
	ProposeMembership(ctx context.Context, m domain.Membership) error
}

// MembersConfig configures Members.
type MembersConfig struct {
	// Peers is the transport whose peers follow the address book.
	Peers PeerSet
	// Relay carries commands from a follower to the leader.
	Relay AdminRelay
	// ClusterID is what JOIN answers (the cluster UUID).
	ClusterID string
	// StaticPeers are the peer addresses the node started with
	// (--cluster): the leader writes them into the book for the members
	// that have no entry yet.
	StaticPeers map[domain.NodeID]string
	// PromoteLag: see DefaultPromoteLag.
	PromoteLag uint64
	// Interval: see DefaultMembersInterval.
	Interval time.Duration
	// OnChange, if set, is called after the applied address book changed
	// (with the new book).
	OnChange func(keyspace.AddressBook)
}

// Members runs membership changes and keeps the node's peers in step
// with the replicated address book.
type Members struct {
	svc  *Service
	node MemberNode
	cfg  MembersConfig
	log  zerolog.Logger

	opMu sync.Mutex // one change at a time from this node

	mu      sync.Mutex
	book    keyspace.AddressBook
	applied map[domain.NodeID]string // peer addresses set on the transport
	removed bool                     // this node saw itself retired

	stop context.CancelFunc
	done chan struct{}
}

// addrBook is the service's view of the client addresses learnt from the
// replicated address book (see Service.clientAddr).
type addrBook struct {
	p atomic.Pointer[map[domain.NodeID]string]
}

// clientAddr returns id's client address: from the replicated address
// book, else from Config.ClientAddrs.
func (s *Service) clientAddr(id domain.NodeID) (string, bool) {
	if p := s.addrs.p.Load(); p != nil {
		if a, ok := (*p)[id]; ok {
			return a, true
		}
	}
	a, ok := s.cfg.ClientAddrs[id]
	return a, ok
}

// NewMembers starts the membership manager of svc over n.
func NewMembers(svc *Service, n MemberNode, cfg MembersConfig) *Members {
	if cfg.PromoteLag == 0 {
		cfg.PromoteLag = DefaultPromoteLag
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultMembersInterval
	}
	cfg.StaticPeers = maps.Clone(cfg.StaticPeers)
	m := &Members{svc: svc, node: n, cfg: cfg, log: svc.cfg.Logger.With().Str("component", "members").Logger(),
		applied: map[domain.NodeID]string{}, done: make(chan struct{})}
	for id, a := range cfg.StaticPeers {
		if id != n.ID() {
			m.applied[id] = a
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	m.reconcile()
	go m.loop(ctx)
	return m
}

// Close stops the background work.
func (m *Members) Close() {
	m.stop()
	<-m.done
}

// Book returns the applied address book.
func (m *Members) Book() keyspace.AddressBook {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.book
}

func (m *Members) loop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.reconcile()
		if m.node.Leader() == m.node.ID() {
			m.lead(ctx)
		}
	}
}

// reconcile reads the applied address book and sets the transport's peers
// and the service's client addresses from it.
func (m *Members) reconcile() {
	var book keyspace.AddressBook
	err := m.svc.kv.View(func(st keyspace.Store) error {
		var err error
		book, err = keyspace.ReadAddressBook(st)
		return err
	})
	if err != nil {
		m.log.Warn().Err(err).Msg("reading the address book failed")
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := !slices.Equal(book.Members, m.book.Members) || !slices.Equal(book.Retired, m.book.Retired)
	m.book = book
	if !changed {
		return
	}
	self := m.node.ID()
	clients := map[domain.NodeID]string{}
	for _, e := range book.Members {
		clients[e.ID] = e.Client
		if e.ID == self || m.applied[e.ID] == e.Peer || m.cfg.Peers == nil {
			continue
		}
		if err := m.cfg.Peers.SetPeer(e.ID, e.Peer); err != nil {
			m.log.Warn().Err(err).Uint64("peer", uint64(e.ID)).Msg("setting a peer's address failed")
			continue
		}
		m.applied[e.ID] = e.Peer
		m.log.Info().Uint64("peer", uint64(e.ID)).Str("peer_addr", e.Peer).Str("client_addr", e.Client).Msg("peer address learnt from the address book")
	}
	for _, id := range book.Retired {
		if id == self {
			if !m.removed {
				m.removed = true
				m.svc.removed.Store(true)
				m.log.Warn().Msg("this node was removed from the cluster: it refuses writes from now on, its peers refuse its connections, " +
					"and its id is retired and may not rejoin (stop it; start a new node with a new id and an empty data dir)")
			}
			continue
		}
		if m.cfg.Peers == nil {
			continue
		}
		// Also when this node never set it (a static --cluster peer after
		// a restart): the transport then refuses it as a removed member.
		_ = m.cfg.Peers.RemovePeer(id)
		if _, ok := m.applied[id]; ok {
			delete(m.applied, id)
			m.log.Info().Uint64("peer", uint64(id)).Msg("retired node forgotten: its connections are refused from now on")
		}
	}
	m.svc.addrs.p.Store(&clients)
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(book)
	}
}

// lead is the leader's periodic work: write the book entries of members
// that have none (the static --cluster nodes), and promote learners that
// caught up.
func (m *Members) lead(ctx context.Context) {
	if !m.opMu.TryLock() {
		return
	}
	defer m.opMu.Unlock()
	st := m.node.Status()
	book := m.Book()
	for _, id := range st.Membership.Members() {
		if _, ok := book.Get(id); ok {
			continue
		}
		peer, client := m.cfg.StaticPeers[id], m.svc.cfg.ClientAddrs[id]
		if peer == "" || client == "" {
			continue
		}
		if err := m.setBook(ctx, id, peer, client, true); err != nil {
			m.log.Debug().Err(err).Uint64("member", uint64(id)).Msg("writing a static member's addresses failed; retrying")
			return
		}
	}
	for _, id := range st.Membership.Learners {
		e, ok := book.Get(id)
		if !ok || !e.AutoPromote || !m.caughtUp(st, id) {
			continue
		}
		next := withRole(st.Membership, id, true)
		pr := st.Progress[id]
		m.log.Info().Uint64("member", uint64(id)).Uint64("match", uint64(pr.Match)).Uint64("last_index", uint64(st.LastIndex)).
			Uint64("max_lag", m.cfg.PromoteLag).Msg("learner caught up: promoting it to voter")
		if err := m.propose(ctx, next); err != nil {
			m.log.Info().Err(err).Uint64("member", uint64(id)).Msg("promotion failed; retrying")
		}
		return
	}
}

// caughtUp reports whether learner id is within PromoteLag of the leader.
func (m *Members) caughtUp(st consensus.Status, id domain.NodeID) bool {
	pr, ok := st.Progress[id]
	return ok && pr.RecentActive && pr.State == consensus.ProgressReplicate && pr.Match+domain.Index(m.cfg.PromoteLag) >= st.LastIndex
}

func (m *Members) propose(ctx context.Context, next domain.Membership) error {
	ctx, cancel := context.WithTimeout(ctx, 4*m.svc.cfg.LeaderWait)
	defer cancel()
	return m.node.ProposeMembership(ctx, next)
}

// setBook writes id's address-book entry through the log.
func (m *Members) setBook(ctx context.Context, id domain.NodeID, peer, client string, auto bool) error {
	a := "0"
	if auto {
		a = "1"
	}
	return m.proposeBook(ctx, "set", strconv.FormatUint(uint64(id), 10), peer, client, a)
}

func (m *Members) proposeBook(ctx context.Context, args ...string) error {
	call := domain.Call{DB: 0, Args: [][]byte{[]byte(keyspace.MemberCommand)}}
	for _, a := range args {
		call.Args = append(call.Args, []byte(a))
	}
	ctx, cancel := context.WithTimeout(ctx, 4*m.svc.cfg.LeaderWait)
	defer cancel()
	res, err := m.node.Propose(ctx, domain.EncodeCommand(domain.Command{Time: m.svc.now(), Calls: []domain.Call{call}}))
	if err != nil {
		return err
	}
	if r := res[0].Reply; r.IsError() {
		return errors.New(strings.TrimPrefix(r.Str, "ERR "))
	}
	m.reconcile()
	return nil
}

// Admin errors. Their text is what a client sees after the RESP error
// code, which errCode picks.
var (
	errUnknownNode = errors.New("unknown node")
	errTryAgain    = errors.New("TRYAGAIN")
)

// errReply is an error reply: TRYAGAIN for what may succeed later
// (a change in flight, no leader, a learner not caught up), ERR else.
func errReply(err error) domain.Reply {
	text := strings.ReplaceAll(strings.ReplaceAll(err.Error(), "\r", " "), "\n", " ")
	switch {
	case errors.Is(err, errTryAgain), errors.Is(err, domain.ErrProposalDropped), errors.Is(err, domain.ErrNotLeader),
		errors.Is(err, domain.ErrNoLeader), errors.Is(err, domain.ErrLeadershipLost):
		return domain.ErrorReply("TRYAGAIN " + strings.TrimPrefix(text, "TRYAGAIN: "))
	case errors.Is(err, context.DeadlineExceeded):
		// The change may or may not be made: every subcommand is safe to
		// repeat (ADD and JOIN of a member with the same addresses, REMOVE
		// of a retired id answer OK).
		return domain.ErrorReply("TIMEOUT outcome unknown, safe to repeat: " + text)
	}
	return domain.ErrorReply("ERR " + text)
}

func tryAgain(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errTryAgain}, args...)...)
}

// Do runs SESHAT.MEMBER with args (the subcommand and its arguments). On a
// follower it relays the command to the leader, unless relayed (then it
// answers TRYAGAIN: the command came from a node that took this one for
// the leader).
func (m *Members) Do(ctx context.Context, args [][]byte, relayed bool) domain.Reply {
	if len(args) == 0 {
		return domain.ErrorReply("ERR wrong number of arguments for 'seshat.member' command")
	}
	sub := strings.ToUpper(string(args[0]))
	want := map[string]int{"LIST": 1, "ADD": 4, "PROMOTE": 2, "DEMOTE": 2, "REMOVE": 2, "REPLACE": 5, "JOIN": 4}
	n, ok := want[sub]
	if !ok {
		return domain.ErrorReply(fmt.Sprintf("ERR unknown subcommand '%.64s'. Try SESHAT.MEMBER LIST, ADD, PROMOTE, DEMOTE, REMOVE, REPLACE or JOIN.", args[0]))
	}
	if len(args) != n {
		return domain.ErrorReply(fmt.Sprintf("ERR wrong number of arguments for 'seshat.member|%s' command", strings.ToLower(sub)))
	}
	var ids []domain.NodeID
	for i, a := range args[1:] {
		if sub == "LIST" || (i > 0 && sub != "REPLACE") || (sub == "REPLACE" && i > 1) {
			break
		}
		v, err := strconv.ParseUint(string(a), 10, 64)
		if err != nil || v == 0 {
			return domain.ErrorReply(fmt.Sprintf("ERR invalid node id '%.32s'", a))
		}
		ids = append(ids, domain.NodeID(v))
	}
	lead, err := m.svc.waitLeader(ctx, time.Now().Add(m.svc.cfg.LeaderWait))
	if err != nil {
		if sub == "LIST" {
			return m.list(m.node.Status())
		}
		return errReply(tryAgain("no leader known yet: %v", err))
	}
	self := m.node.ID()
	if lead == self && len(ids) > 0 && ids[0] == self && (sub == "REMOVE" || sub == "DEMOTE" || sub == "REPLACE") {
		// A leader that removes or demotes itself hands over first; the
		// new leader runs the command.
		hctx, cancel := context.WithTimeout(ctx, 4*m.svc.cfg.LeaderWait)
		err := m.svc.HandOver(hctx)
		cancel()
		if err != nil {
			return errReply(tryAgain("the leader could not hand over before removing itself: %v", err))
		}
		if lead, err = m.svc.waitLeader(ctx, time.Now().Add(2*m.svc.cfg.LeaderWait)); err != nil || lead == self {
			return errReply(tryAgain("no new leader after the hand-over"))
		}
		relayed = false
	}
	if lead != self {
		if relayed {
			return errReply(tryAgain("node %d is not the leader (leader %d)", self, lead))
		}
		return m.relay(ctx, lead, args)
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	switch sub {
	case "LIST":
		return m.list(m.node.Status())
	case "ADD":
		return m.reply(m.add(ctx, ids[0], string(args[2]), string(args[3])))
	case "JOIN":
		id := ids[0]
		if m.Book().IsRetired(id) {
			m.log.Warn().Uint64("member", uint64(id)).Msg("join refused: this node id was removed and is retired")
		}
		if err := m.add(ctx, id, string(args[2]), string(args[3])); err != nil {
			return errReply(err)
		}
		return m.joinReply()
	case "PROMOTE":
		return m.reply(m.promote(ctx, ids[0]))
	case "DEMOTE":
		return m.reply(m.demote(ctx, ids[0]))
	case "REMOVE":
		return m.reply(m.remove(ctx, ids[0]))
	case "REPLACE":
		if ids[0] == ids[1] {
			return domain.ErrorReply("ERR REPLACE needs a new id: an id once removed is never accepted again")
		}
		if err := m.remove(ctx, ids[0]); err != nil {
			return errReply(err)
		}
		return m.reply(m.add(ctx, ids[1], string(args[3]), string(args[4])))
	}
	return domain.ErrorReply("ERR unreachable")
}

func (m *Members) reply(err error) domain.Reply {
	if err != nil {
		return errReply(err)
	}
	return domain.OK
}

func (m *Members) relay(ctx context.Context, lead domain.NodeID, args [][]byte) domain.Reply {
	addr, ok := m.svc.clientAddr(lead)
	if !ok || m.cfg.Relay == nil {
		return errReply(tryAgain("no client address known for the leader %d", lead))
	}
	rctx, cancel := context.WithTimeout(ctx, m.svc.cfg.RelayTimeout+8*m.svc.cfg.LeaderWait)
	defer cancel()
	full := append([][]byte{[]byte("SESHAT.MEMBER")}, args...)
	r, err := m.cfg.Relay.Command(rctx, addr, full...)
	if err != nil {
		return errReply(tryAgain("relaying to the leader %d at %s: %v", lead, addr, err))
	}
	return r
}

// add makes id a learner with these addresses (promoted when caught up).
func (m *Members) add(ctx context.Context, id domain.NodeID, peer, client string) error {
	st := m.node.Status()
	if m.Book().IsRetired(id) {
		return fmt.Errorf("node %d was removed from the cluster and may never rejoin; use a new id", id)
	}
	if st.Membership.Contains(id) {
		if e, ok := m.Book().Get(id); ok && e.Peer == peer && e.Client == client {
			return nil // already there: ADD and JOIN are idempotent
		}
		return fmt.Errorf("node %d is already a member (with other addresses)", id)
	}
	for _, e := range m.Book().Members {
		if e.ID != id && st.Membership.Contains(e.ID) && (e.Peer == peer || e.Client == client) {
			return fmt.Errorf("address %s or %s is node %d's", peer, client, e.ID)
		}
	}
	if err := m.setBook(ctx, id, peer, client, true); err != nil {
		return err
	}
	next := st.Membership.Clone()
	next.Learners = append(next.Learners, id)
	if err := m.propose(ctx, next); err != nil {
		return err
	}
	m.log.Info().Uint64("member", uint64(id)).Str("peer_addr", peer).Str("client_addr", client).Msg("node added as a learner")
	return nil
}

func (m *Members) promote(ctx context.Context, id domain.NodeID) error {
	st := m.node.Status()
	switch {
	case st.Membership.IsVoter(id):
		return nil
	case !st.Membership.IsLearner(id):
		return fmt.Errorf("%w %d", errUnknownNode, id)
	}
	if e, ok := m.Book().Get(id); ok && !e.AutoPromote {
		if err := m.setBook(ctx, id, e.Peer, e.Client, true); err != nil {
			return err
		}
	}
	if !m.caughtUp(st, id) {
		pr := st.Progress[id]
		return tryAgain("learner %d is at %d, %d behind the leader's %d (promoted automatically once within %d)",
			id, pr.Match, st.LastIndex-min(pr.Match, st.LastIndex), st.LastIndex, m.cfg.PromoteLag)
	}
	return m.propose(ctx, withRole(st.Membership, id, true))
}

func (m *Members) demote(ctx context.Context, id domain.NodeID) error {
	st := m.node.Status()
	if !st.Membership.Contains(id) {
		return fmt.Errorf("%w %d", errUnknownNode, id)
	}
	if e, ok := m.Book().Get(id); ok && e.AutoPromote {
		if err := m.setBook(ctx, id, e.Peer, e.Client, false); err != nil {
			return err
		}
	}
	if st.Membership.IsLearner(id) {
		return nil
	}
	return m.propose(ctx, withRole(st.Membership, id, false))
}

// withRole returns m with id a voter (voter) or a learner.
func withRole(m domain.Membership, id domain.NodeID, voter bool) domain.Membership {
	next := m.Clone()
	is := func(x domain.NodeID) bool { return x == id }
	next.Voters = slices.DeleteFunc(next.Voters, is)
	next.Learners = slices.DeleteFunc(next.Learners, is)
	if voter {
		next.Voters = append(next.Voters, id)
	} else {
		next.Learners = append(next.Learners, id)
	}
	return next
}

// remove takes id out of the membership, then retires it.
func (m *Members) remove(ctx context.Context, id domain.NodeID) error {
	st := m.node.Status()
	book := m.Book()
	_, inBook := book.Get(id)
	if !st.Membership.Contains(id) && !inBook {
		if book.IsRetired(id) {
			return nil
		}
		return fmt.Errorf("%w %d", errUnknownNode, id)
	}
	if st.Membership.Contains(id) {
		next := st.Membership.Clone()
		drop := func(x domain.NodeID) bool { return x == id }
		next.Voters = slices.DeleteFunc(next.Voters, drop)
		next.Learners = slices.DeleteFunc(next.Learners, drop)
		if len(next.Voters) == 0 {
			return fmt.Errorf("node %d is the last voter", id)
		}
		if err := m.propose(ctx, next); err != nil {
			return err
		}
	}
	if err := m.proposeBook(ctx, "retire", strconv.FormatUint(uint64(id), 10)); err != nil {
		return err
	}
	m.log.Info().Uint64("member", uint64(id)).Msg("node removed from the cluster; its id is retired")
	return nil
}

// List returns the members as this node knows them (match and lag on the
// leader only).
func (m *Members) List() []ports.MemberRow { return m.Rows(m.node.Status()) }

// Rows returns the members with the leader's view of their progress.
func (m *Members) Rows(st consensus.Status) []ports.MemberRow {
	book := m.Book()
	var rows []ports.MemberRow
	for _, id := range st.Membership.Members() {
		r := ports.MemberRow{ID: id, Role: "voter", Match: -1, Lag: -1}
		if st.Membership.IsLearner(id) {
			r.Role = "learner"
		}
		if e, ok := book.Get(id); ok {
			r.Peer, r.Client = e.Peer, e.Client
		} else {
			r.Peer = m.cfg.StaticPeers[id]
			r.Client, _ = m.svc.clientAddr(id)
		}
		if id == st.ID && st.Role == consensus.Leader {
			r.Match, r.Lag = int64(st.LastIndex), 0
		} else if pr, ok := st.Progress[id]; ok {
			r.Match = int64(pr.Match)
			r.Lag = int64(st.LastIndex) - int64(min(pr.Match, st.LastIndex))
		}
		rows = append(rows, r)
	}
	return rows
}

func (m *Members) list(st consensus.Status) domain.Reply {
	var out []domain.Reply
	for _, r := range m.Rows(st) {
		out = append(out, domain.ArrayReply(domain.IntReply(int64(r.ID)), domain.StringReply(r.Role),
			domain.StringReply(r.Peer), domain.StringReply(r.Client), domain.IntReply(r.Match), domain.IntReply(r.Lag)))
	}
	return domain.ArrayReply(out...)
}

// joinReply is [cluster-uuid, [[id, role, peer-addr, client-addr], ...]].
func (m *Members) joinReply() domain.Reply {
	var rows []domain.Reply
	for _, r := range m.Rows(m.node.Status()) {
		rows = append(rows, domain.ArrayReply(domain.IntReply(int64(r.ID)), domain.StringReply(r.Role),
			domain.StringReply(r.Peer), domain.StringReply(r.Client)))
	}
	return domain.ArrayReply(domain.StringReply(m.cfg.ClusterID), domain.ArrayReply(rows...))
}
