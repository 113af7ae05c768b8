package node

import (
	"fmt"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// Driver is the deterministic part of a node: it owns a consensus core and
// everything around it that decides (proposals waiting for their entries,
// read batches, leadership transfers, the disk-full policy, compaction),
// and it does nothing by itself. It has no goroutine, no clock, no channel
// and no I/O: a runner (the Node shell, or the simulator) feeds it inputs
// (Tick, Step, Propose, Read, Transfer, SnapshotSent, SetDiskFull) and the
// completions of the work it asked for (LogDone, ApplyDone), and after each
// input takes its Output: messages to send, storage work to run, snapshots
// to send, and answers to deliver.
//
// Storage work runs on two stages, each in order: the log stage runs
// LogJobs (vote, log writes and syncs, snapshot installs, purges), the
// apply stage ApplyJobs (applying committed entries, syncing the state
// machine). The driver keeps at most one Ready's LogJob in flight (the
// core hands out one Ready at a time), but goes on stepping messages and
// taking proposals meanwhile and sends the core's messages that need no
// sync at once (TakeMessages): the next Ready takes everything that
// arrived during the write, which is group commit. Committed entries go to
// the apply stage once the Ready that carried them is durable, and the
// next Ready's write overlaps their application.
//
// A Driver is not safe for concurrent use.
type Driver struct {
	cfg  DriverConfig
	id   domain.NodeID
	log  zerolog.Logger
	core *consensus.Raft
	soft consensus.SoftState

	ticks uint64

	// The Ready whose LogJob is on the log stage (nil if none), and one
	// taken but not yet issued: a snapshot install waits for the apply
	// stage to be idle.
	inflight *readyJob
	held     *readyJob
	// applying counts the ApplyJobs handed out and not completed.
	applying int
	// applied is the last index the state machine applied (ApplyDone).
	applied domain.Index
	// issued is the last committed index handed to the apply stage;
	// issuedAll the last index handed to it at all (a planted bug may
	// hand out more).
	issued, issuedAll domain.Index
	// lastIndex is the last index written to the LogStore.
	lastIndex domain.Index

	props     proposals
	reads     reads
	transfers transfers
	compact   compaction
	snaps     snapshotSends
	diskFull  bool
	// plant: the driver's planted bugs (consensus.Plant), read once.
	plant struct{ applyUncommitted, answerByIndex, purgeUnsynced bool }

	out, spare Output
}

// DriverConfig configures a Driver: the core's configuration and the
// policies the driver applies. Node's Config embeds it. Every field but
// Raft.ID has a usable zero value; NewDriver fills in the defaults
// (ensureDefaults is the one place that holds them).
type DriverConfig struct {
	// Raft configures the core; Raft.Logger defaults to Logger. The core
	// fills in its own defaults.
	Raft consensus.Config
	// SnapshotEntries is the compaction period: once the applied index has
	// moved this many entries past the last compaction, the driver syncs
	// the state machine and purges the log. Default 10000.
	SnapshotEntries uint64
	// SnapshotBytes compacts too once this many bytes of entries
	// (Entry.Size) were applied since the last compaction, whichever of
	// the two comes first, so that large values do not let the log grow
	// to SnapshotEntries times their size. Default 64 MiB.
	SnapshotBytes uint64
	// TrailingEntries is how many applied entries compaction keeps behind
	// the applied index, so that a follower lagging by less than that
	// catches up from the log instead of a snapshot. Default 1000.
	TrailingEntries uint64
	// TrailingBytes bounds the bytes of those entries (Entry.Size):
	// compaction keeps fewer than TrailingEntries when they hold more, so
	// that a node does not keep a value of hundreds of MB in memory after
	// it is applied, for as long as TrailingEntries more writes take, nor
	// a thousand values of a MB. Default 64 MiB.
	TrailingBytes uint64
	// MaxApplyJobs bounds the ApplyJobs in flight: past it the driver takes
	// no new Ready until the apply stage catches up. Default 64.
	MaxApplyJobs int
	// Logger receives the node's events: leader changes at Info, storage
	// failures at Error, the rest at Debug. Default: discard.
	Logger *zerolog.Logger
}

// DefaultMaxApplyJobs is DriverConfig.MaxApplyJobs's default.
const DefaultMaxApplyJobs = 64

func (c *DriverConfig) ensureDefaults() {
	if c.MaxApplyJobs == 0 {
		c.MaxApplyJobs = DefaultMaxApplyJobs
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = DefaultSnapshotEntries
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = DefaultSnapshotBytes
	}
	if c.TrailingEntries == 0 {
		c.TrailingEntries = DefaultTrailingEntries
	}
	if c.TrailingBytes == 0 {
		c.TrailingBytes = DefaultTrailingBytes
	}
	if c.Logger == nil {
		nop := zerolog.Nop()
		c.Logger = &nop
	}
	if c.Raft.Logger == nil {
		c.Raft.Logger = c.Logger
	}
	c.Raft.EnsureDefaults()
}

// Output is what the driver asks its runner to do, in this order: send
// Messages, start Snapshots (fill each MsgSnap with the state machine's
// image, send it, and report with SnapshotSent), queue Log on the log
// stage and Apply on the apply stage (each stage runs its jobs in order
// and reports each with LogDone or ApplyDone), then deliver Answers.
// Runners that publish a status publish it before delivering the answers,
// so that a caller sees its own effect.
type Output struct {
	Messages  []domain.Message
	Snapshots []domain.Message
	Log       []*LogJob
	Apply     []*ApplyJob
	Answers   []Answer
	// Discard are received snapshots held in files (Snapshot.File) that
	// the core will not install: the runner deletes their files.
	Discard []*domain.Snapshot
	// SoftState is set when the leader or the role changed.
	SoftState *consensus.SoftState
}

// Empty reports whether o asks for nothing.
func (o *Output) Empty() bool {
	return len(o.Messages) == 0 && len(o.Snapshots) == 0 && len(o.Log) == 0 && len(o.Apply) == 0 &&
		len(o.Answers) == 0 && len(o.Discard) == 0 && o.SoftState == nil
}

// Answer is a reply to a Propose, Read or Transfer call: Deliver runs the
// caller's Done with it.
type Answer struct {
	prop     *Proposal
	read     *Read
	transfer *Transfer
	err      error
}

// Deliver calls the Done of the request answered.
func (a Answer) Deliver() {
	switch {
	case a.prop != nil:
		if a.err != nil {
			a.prop.Done(nil, a.err)
		} else {
			a.prop.Done(a.prop.results, nil)
		}
	case a.read != nil:
		a.read.Done(a.err)
	case a.transfer != nil:
		a.transfer.Done(a.err)
	}
}

// Err is the answer's error (nil for a success).
func (a Answer) Err() error { return a.err }

// NewDriver builds a driver from the durable state st (LoadState's) of a
// log whose first stored index is firstIndex.
func NewDriver(cfg DriverConfig, st consensus.State, firstIndex domain.Index) (*Driver, error) {
	cfg.ensureDefaults()
	core, err := consensus.New(cfg.Raft, st)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", cfg.Raft.ID, err)
	}
	base := st.Snapshot.Index
	d := &Driver{
		cfg:       cfg,
		id:        cfg.Raft.ID,
		log:       cfg.Logger.With().Uint64("node", uint64(cfg.Raft.ID)).Logger(),
		core:      core,
		soft:      consensus.SoftState{Lead: domain.None, Role: consensus.Follower},
		applied:   base,
		issued:    base,
		issuedAll: base,
		lastIndex: base + domain.Index(len(st.Entries)),
	}
	d.plant.applyUncommitted = cfg.Raft.Planted("apply-uncommitted")
	d.plant.answerByIndex = cfg.Raft.Planted("answer-by-index")
	d.plant.purgeUnsynced = cfg.Raft.Planted("purge-unsynced")
	d.props.init()
	d.reads.init()
	d.snaps.init()
	d.compact = compaction{at: base, purged: firstIndex - 1}
	return d, nil
}

// ID returns the node's id.
func (d *Driver) ID() domain.NodeID { return d.id }

// SoftState returns the leader and role as of the last Output.
func (d *Driver) SoftState() consensus.SoftState { return d.soft }

// Status returns the core's status.
func (d *Driver) Status() consensus.Status { return d.core.Status() }

// Term returns the term of the entry at i in the core's log, or an error
// wrapping domain.ErrCompacted or domain.ErrUnavailable when the core does
// not hold it.
func (d *Driver) Term(i domain.Index) (domain.Term, error) { return d.core.Term(i) }

// Applied returns the last index the state machine applied, as reported by
// ApplyDone (or restored from a snapshot).
func (d *Driver) Applied() domain.Index { return d.applied }

// Tick advances the logical clock: the core's, the read and transfer
// timeouts, the disk-full policy.
func (d *Driver) Tick() {
	d.core.Tick()
	d.ticks++
	d.expireReads()
	d.expireTransfers()
	d.diskFullTick()
}

// Step hands a message from a peer to the core.
func (d *Driver) Step(m domain.Message) {
	d.snapshotStepped(m)
	if err := d.core.Step(m); err != nil {
		d.log.Debug().Err(err).Stringer("msg", m).Msg("message refused")
	}
}

// Output takes the pending Readies the stages can take and returns
// everything the runner has to do.
//
// The slices of the Output returned stay valid until the second Output
// call after it: the driver keeps two sets of buffers and fills one while
// the runner handles the other (and may, while handling it, give the
// driver inputs that add to the next).
func (d *Driver) Output() Output {
	d.flushReads()
	d.pump()
	out := d.out
	d.out = d.spare.reset()
	d.spare = out
	return out
}

// reset empties o's slices, keeping their arrays, and returns it.
func (o Output) reset() Output {
	clear(o.Messages)
	clear(o.Snapshots)
	clear(o.Log)
	clear(o.Apply)
	clear(o.Answers)
	clear(o.Discard)
	return Output{Messages: o.Messages[:0], Snapshots: o.Snapshots[:0], Log: o.Log[:0], Apply: o.Apply[:0], Answers: o.Answers[:0],
		Discard: o.Discard[:0]}
}

// readyJob is a Ready taken from the core and its LogJob.
type readyJob struct {
	rd  consensus.Ready
	job LogJob
}

// pump takes Readies while the log stage is free and the apply stage has
// room: a Ready that needs no write completes at once, one that does is
// handed out as a LogJob. While it can take none it takes the messages
// that need not wait.
func (d *Driver) pump() {
	for d.inflight == nil && d.held == nil && d.applying < d.cfg.MaxApplyJobs && d.core.HasReady() {
		rj := d.takeReady()
		if rj.job.Snapshot != nil && d.applying > 0 {
			d.held = rj // installed once the apply stage is idle
			return
		}
		d.issue(rj)
	}
	d.snapshotsIdle()
	// No Ready goes out while one is being written, one waits to be
	// installed, or the apply stage is full; the messages that need no
	// write still do. A value of hundreds of MB takes seconds to apply
	// while small writes queue jobs behind it: a node that sent no
	// heartbeat and answered none meanwhile would look dead to its peers.
	if d.inflight != nil || d.held != nil || d.applying >= d.cfg.MaxApplyJobs {
		d.send(d.core.TakeMessages())
		if rs := d.core.TakeReadStates(); len(rs) > 0 {
			for _, s := range rs {
				d.readState(s)
			}
			d.serveReads()
		}
	}
}

// takeReady takes a Ready from the core, sends its messages, notes its
// soft state and read states, and builds its LogJob.
func (d *Driver) takeReady() *readyJob {
	rd := d.core.Ready()
	d.snapshotsTaken(rd.Snapshot)
	d.send(rd.Messages)
	if rd.SoftState != nil {
		d.softState(*rd.SoftState)
	}
	for _, rs := range rd.ReadStates {
		d.readState(rs)
	}
	d.serveReads()
	rj := &readyJob{rd: rd}
	job := &rj.job
	*job = LogJob{Snapshot: rd.Snapshot, Vote: rd.Vote, Entries: rd.Entries, Sync: rd.MustSync || rd.Snapshot != nil}
	if rd.Snapshot != nil {
		job.lastStored = d.lastIndex
		d.lastIndex = rd.Snapshot.Meta.Index
	}
	if len(rd.Entries) > 0 {
		job.Truncate = rd.Entries[0].Index <= d.lastIndex
		d.lastIndex = rd.Entries[len(rd.Entries)-1].Index
	}
	return rj
}

// issue hands rj's LogJob to the log stage, or completes it at once if it
// writes nothing.
func (d *Driver) issue(rj *readyJob) {
	if rj.job.empty() {
		d.finishReady(rj)
		return
	}
	rj.job.ready = rj
	d.inflight = rj
	d.out.Log = append(d.out.Log, &rj.job)
}

// LogDone reports that a LogJob completed: its writes are durable. A job
// that failed is not reported: it is a storage failure, and the runner
// stops the node (see Fail). ApplyDone likewise.
func (d *Driver) LogDone(j *LogJob) {
	rj := j.ready
	if rj == nil {
		return // a purge
	}
	if d.inflight != rj {
		panic(fmt.Sprintf("node %d: log job completed out of order", d.id))
	}
	d.inflight = nil
	d.finishReady(rj)
}

// finishReady does what a Ready asks once its writes are durable: send
// the messages that waited for them, hand its committed entries to the
// apply stage, and advance the core.
func (d *Driver) finishReady(rj *readyJob) {
	rd := rj.rd
	if rd.Snapshot != nil {
		d.snapshotInstalled(rd.Snapshot.Meta)
	}
	d.send(rd.MessagesAfterSync)
	committed := rd.CommittedEntries
	rd.CommittedEntries = nil
	d.core.Advance(rd)
	if len(committed) > 0 {
		d.issueApply(committed)
	}
	d.applyUncommitted(rj)
}

func (d *Driver) issueApply(ents []domain.Entry) {
	d.issued = max(d.issued, ents[len(ents)-1].Index)
	d.issuedAll = max(d.issuedAll, d.issued)
	d.applying++
	d.out.Apply = append(d.out.Apply, &ApplyJob{Entries: ents})
}

// ApplyDone reports that an ApplyJob completed: its entries are applied
// (Results filled in) and, if it asked, the state machine is synced.
func (d *Driver) ApplyDone(j *ApplyJob) {
	d.applying--
	if j.SyncStateMachine {
		d.stateMachineSynced(j.syncedAt)
	}
	if len(j.Entries) > 0 {
		last := j.Entries[len(j.Entries)-1].Index
		if last > d.applied {
			d.applied = last
			// Only committed entries count for the core (a planted bug
			// may apply others).
			d.core.AppliedTo(min(last, d.issued))
		}
		d.compact.bytes += entriesBytes(j.Entries)
		d.compact.sized(j.Entries)
		d.answerApplied(j.Entries, j.Results)
	}
	d.serveReads()
	d.maybeCompact()
	if d.held != nil && d.applying == 0 {
		rj := d.held
		d.held = nil
		d.issue(rj)
	}
}

func entriesBytes(ents []domain.Entry) uint64 {
	var n uint64
	for i := range ents {
		n += ents[i].Size()
	}
	return n
}

// send queues messages for the runner; MsgSnap go to the snapshot senders.
func (d *Driver) send(msgs []domain.Message) {
	for _, m := range msgs {
		if m.Type == domain.MsgSnap {
			d.sendSnapshot(m)
			continue
		}
		d.out.Messages = append(d.out.Messages, m)
	}
}

// softState reacts to a leader or role change: proposals this node can no
// longer see through fail, unconfirmed reads fail, transfers end.
func (d *Driver) softState(s consensus.SoftState) {
	old := d.soft
	d.soft = s
	if old == s {
		return
	}
	d.out.SoftState = &s
	st := d.core.Status()
	if old.Lead != s.Lead || (old.Role == consensus.Leader) != (s.Role == consensus.Leader) {
		d.log.Info().Uint64("term", uint64(st.Term)).Uint64("leader", uint64(s.Lead)).
			Stringer("role", s.Role).Msg("leader changed")
	} else {
		d.log.Debug().Uint64("term", uint64(st.Term)).Stringer("role", s.Role).Msg("role changed")
	}
	if old.Role == consensus.Leader && s.Role != consensus.Leader {
		d.leadershipLost(st.Commit)
	}
	if old.Lead != s.Lead {
		d.leaderChanged(old.Lead, s.Lead)
	}
}

// Fail fails everything waiting with err: the runner calls it when it
// stops the node (err wraps domain.ErrStopped) and takes the answers with
// a last Output.
func (d *Driver) Fail(err error) {
	d.props.failAll(d, err)
	d.failReads(err)
	d.failTransfers(err)
}
