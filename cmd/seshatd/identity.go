package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// identityConfig is what the command line says about the cluster this node
// belongs to (see README, "Operating a cluster").
type identityConfig struct {
	// bootstrap: create the cluster (voters: --cluster's nodes) if the data
	// dir holds no identity yet; ignored when it does.
	bootstrap bool
	// clusterUUID is --cluster-uuid, normalized; empty if not given.
	clusterUUID string
	// join is --join's address (the join flow belongs to "seshatd --join").
	join string
	// forceNew: restart this node as the only voter of a new cluster.
	forceNew bool
}

type identityFlags struct {
	bootstrap, forceNew, ack *bool
	uuid, join               *string
}

// ackFlag is the acknowledgement --force-new-cluster requires.
const ackFlag = "i-understand-this-may-lose-writes"

func addIdentityFlags(fs *flag.FlagSet) *identityFlags {
	return &identityFlags{
		bootstrap: fs.Bool("bootstrap", false, "create a new cluster whose voters are --cluster's nodes, if the data dir holds no cluster identity yet (give every initial node the same --cluster-uuid); ignored once it does"),
		uuid:      fs.String("cluster-uuid", "", "the new cluster's UUID with --bootstrap (default for a one-node cluster: a random one); otherwise, if given, it must be the data dir's"),
		join:      fs.String("join", "", "host:port of a member of a running cluster to ask to add this node (a node with an empty data dir)"),
		forceNew:  fs.Bool("force-new-cluster", false, "recover from a lost quorum: restart this node as the only voter of a new cluster (new UUID) from its own data; needs --"+ackFlag),
		ack:       fs.Bool(ackFlag, false, "acknowledge that --force-new-cluster may lose acknowledged writes"),
	}
}

// resolve checks the identity flags against each other and --cluster.
func (f *identityFlags) resolve(cluster map[domain.NodeID]string) (identityConfig, error) {
	c := identityConfig{bootstrap: *f.bootstrap, join: *f.join, forceNew: *f.forceNew}
	if *f.uuid != "" {
		u, err := datadir.NormalizeUUID(*f.uuid)
		if err != nil {
			return c, fmt.Errorf("--cluster-uuid: %v", err)
		}
		c.clusterUUID = u
	}
	switch {
	case c.bootstrap && c.join != "":
		return c, errors.New("--bootstrap and --join exclude each other: create a new cluster, or join a running one")
	case c.forceNew && (c.bootstrap || c.join != ""):
		return c, errors.New("--force-new-cluster restarts a node from its own data: it excludes --bootstrap and --join")
	case c.forceNew && !*f.ack:
		return c, errors.New("--force-new-cluster makes this node the only voter of a new cluster from its own log: " +
			"writes the lost majority acknowledged but this node never received are gone for good, and the other nodes " +
			"must be added back as new members. If that is what you want, add --" + ackFlag)
	case *f.ack && !c.forceNew:
		return c, errors.New("--" + ackFlag + " acknowledges --force-new-cluster, which is not given")
	case c.bootstrap && c.clusterUUID == "" && len(cluster) > 1:
		return c, fmt.Errorf("--bootstrap of a %d-node cluster needs --cluster-uuid: the same new UUID on every initial node (e.g. from uuidgen or /proc/sys/kernel/random/uuid)", len(cluster))
	}
	return c, nil
}

// openIdentity decides which cluster this node belongs to, from its data
// dir and the flags, before any store is opened. An empty data dir becomes
// a member only when told to (--bootstrap); otherwise seshatd refuses to
// start and says what to do.
func openIdentity(cfg config, log zerolog.Logger) (datadir.Identity, error) {
	id, err := datadir.Load(cfg.dataDir)
	switch {
	case errors.Is(err, domain.ErrNoIdentity):
		return newIdentity(cfg, log)
	case err != nil:
		return id, badConfig("data dir %s: %v (restore the file, or replace this node: see README, \"Operating a cluster\")", cfg.dataDir, err)
	case id.NodeID != cfg.id:
		return id, badConfig("data dir %s belongs to node %d of cluster %s, but --id is %d", cfg.dataDir, id.NodeID, id.ClusterID, cfg.id)
	case cfg.ident.clusterUUID != "" && cfg.ident.clusterUUID != id.ClusterID && !cfg.ident.forceNew:
		return id, badConfig("data dir %s belongs to cluster %s, but --cluster-uuid is %s", cfg.dataDir, id.ClusterID, cfg.ident.clusterUUID)
	}
	if cfg.ident.bootstrap {
		log.Info().Str("cluster_uuid", id.ClusterID).Msg("--bootstrap ignored: the data dir already belongs to a cluster")
	}
	return id, nil
}

// newIdentity handles a data dir without an identity.
func newIdentity(cfg config, log zerolog.Logger) (datadir.Identity, error) {
	switch {
	case cfg.ident.forceNew:
		return datadir.Identity{}, badConfig("--force-new-cluster: data dir %s holds no cluster identity, so there is no data to recover from", cfg.dataDir)
	case !cfg.ident.bootstrap:
		return datadir.Identity{}, badConfig("data dir %s holds no cluster identity: this node is no member of any cluster "+
			"(it never was, or its data was lost), and it does not make itself one. To create a new cluster, "+
			"start each initial node once with --bootstrap --cluster-uuid U (the same new UUID on each); "+
			"to add this node to a running cluster, use --join host:port; if this node was a member whose data was lost, "+
			"do not bootstrap it: replace it (README, \"Operating a cluster\")", cfg.dataDir)
	}
	id := datadir.Identity{ClusterID: cfg.ident.clusterUUID, NodeID: cfg.id}
	if id.ClusterID == "" {
		id.ClusterID = datadir.NewUUID()
	}
	ents, err := os.ReadDir(cfg.dataDir)
	if err != nil {
		return id, badConfig("data dir: %v", err)
	}
	if err := datadir.Save(cfg.dataDir, id); err != nil {
		return id, fmt.Errorf("save the cluster identity: %w", err)
	}
	voters := make([]uint64, 0, len(cfg.cluster))
	for nid := range cfg.cluster {
		voters = append(voters, uint64(nid))
	}
	slices.Sort(voters)
	ev := log.Info().Str("cluster_uuid", id.ClusterID).Uints64("voters", voters)
	if len(ents) > 0 {
		ev = ev.Bool("existing_data", true)
	}
	ev.Msg("bootstrap: this node is an initial member of a new cluster")
	return id, nil
}

// forceNewCluster makes this node the only voter of a new cluster, keeping
// every entry of its log. It saves a new cluster UUID first (so that the
// old members, should any come back, are refused from then on), then
// appends a membership entry {this node} at lastIndex+1 with a term above
// every term this node has seen, and records that term as its current one.
// At start the core takes the last membership in its log, finds itself the
// only voter, elects itself, and its first entry of the new term commits
// everything before it. See ARCHITECTURE.md, "Cluster identity", for why
// this is safe for the new cluster and what it may lose of the old.
func forceNewCluster(cfg config, old datadir.Identity, logs ports.LogStore, votes ports.VoteStore, sm ports.StateMachine, log zerolog.Logger) (datadir.Identity, error) {
	st, err := node.LoadState(logs, votes, sm)
	if err != nil {
		return old, fmt.Errorf("--force-new-cluster: %w", err)
	}
	last := domain.LogID{Index: st.Snapshot.Index, Term: st.Snapshot.Term}
	if n := len(st.Entries); n > 0 {
		last = domain.LogID{Index: st.Entries[n-1].Index, Term: st.Entries[n-1].Term}
	}
	term := max(st.Vote.Term, last.Term) + 1
	id := datadir.Identity{ClusterID: cfg.ident.clusterUUID, NodeID: cfg.id}
	if id.ClusterID == "" || id.ClusterID == old.ClusterID {
		id.ClusterID = datadir.NewUUID()
	}
	if err := datadir.Save(cfg.dataDir, id); err != nil {
		return old, fmt.Errorf("--force-new-cluster: save the new cluster identity: %w", err)
	}
	m := domain.Membership{Voters: []domain.NodeID{cfg.id}}
	e := domain.Entry{Index: last.Index + 1, Term: term, Type: domain.EntryMembership, Data: domain.EncodeMembership(m)}
	if err := logs.Append([]domain.Entry{e}); err != nil {
		return id, fmt.Errorf("--force-new-cluster: append the membership entry: %w", err)
	}
	if err := logs.Sync(); err != nil {
		return id, fmt.Errorf("--force-new-cluster: sync the log: %w", err)
	}
	if err := votes.SetVote(domain.Vote{Term: term}); err != nil {
		return id, fmt.Errorf("--force-new-cluster: store term %d: %w", term, err)
	}
	log.Warn().Str("old_cluster_uuid", old.ClusterID).Str("cluster_uuid", id.ClusterID).
		Uint64("last_index", uint64(last.Index)).Uint64("last_term", uint64(last.Term)).Uint64("term", uint64(term)).
		Msg("--force-new-cluster: this node is now the only voter of a new cluster, with every entry it had; " +
			"add the other nodes back as new members, and remove --force-new-cluster from its command line")
	return id, nil
}
