package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/adapters/relay"
	"github.com/seshat-kv/seshat/domain"
)

// joinTimeout bounds how long a joining node retries SESHAT.MEMBER JOIN
// (a change in flight or an election answers TRYAGAIN).
const joinTimeout = 2 * time.Minute

// joined is what the cluster answered SESHAT.MEMBER JOIN.
type joined struct {
	clusterID string
	peers     map[domain.NodeID]string // the other members' peer addresses
	clients   map[domain.NodeID]string // every member's client address
}

// joinIfNew runs the join flow of --join when the data dir holds no
// cluster identity yet: it asks the cluster to add this node, then saves
// the cluster UUID the cluster answered with this node's id, so a restart
// (identity present) starts as the member it became, learning its peers
// from the replicated address book. It returns nil when there was nothing
// to join (no --join, or an identity already there).
func joinIfNew(cfg config, log zerolog.Logger) (*joined, error) {
	if cfg.ident.join == "" {
		return nil, nil
	}
	if _, err := datadir.Load(cfg.dataDir); !errors.Is(err, domain.ErrNoIdentity) {
		return nil, nil // present (a restart), or damaged: openIdentity says so
	}
	j, err := joinCluster(cfg, log)
	if err != nil {
		return nil, err
	}
	if err := datadir.CheckUUID(j.clusterID); err != nil {
		return nil, fmt.Errorf("--join %s: the cluster answered a bad cluster UUID %q: %v", cfg.ident.join, j.clusterID, err)
	}
	if err := datadir.Save(cfg.dataDir, datadir.Identity{ClusterID: j.clusterID, NodeID: cfg.id}); err != nil {
		return nil, fmt.Errorf("save the cluster identity: %w", err)
	}
	log.Info().Str("cluster_uuid", j.clusterID).Int("members", len(j.clients)).Msg("joined: starting as a learner")
	return &j, nil
}

// joinCluster asks the member at cfg.ident.join's address (any member: a
// follower relays to the leader) to add this node as a learner, with
// this node's peer and client addresses, retrying TRYAGAIN answers.
func joinCluster(cfg config, log zerolog.Logger) (joined, error) {
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	args := [][]byte{[]byte("SESHAT.MEMBER"), []byte("JOIN"), []byte(strconv.FormatUint(uint64(cfg.id), 10)),
		[]byte(cfg.peerListen), []byte(cfg.listen)}
	log.Info().Str("join", cfg.ident.join).Str("peer_addr", cfg.peerListen).Str("client_addr", cfg.listen).Msg("asking the cluster to add this node")
	for {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		rep, err := relay.SendCommand(rctx, cfg.ident.join, cfg.requirePass, false, args...)
		rcancel()
		retry := err != nil || (rep.IsError() && (strings.HasPrefix(rep.Str, "TRYAGAIN") || strings.HasPrefix(rep.Str, "CLUSTERDOWN") || strings.HasPrefix(rep.Str, "TIMEOUT")))
		if !retry {
			if rep.IsError() {
				return joined{}, fmt.Errorf("--join %s: the cluster refused this node: %s", cfg.ident.join, rep.Str)
			}
			return parseJoin(cfg.id, rep)
		}
		if ctx.Err() != nil {
			return joined{}, fmt.Errorf("--join %s: no answer within %v (last: %v %v)", cfg.ident.join, joinTimeout, err, rep)
		}
		log.Info().AnErr("error", err).Str("reply", rep.Str).Msg("join not done yet; retrying")
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
}

// parseJoin reads [cluster-uuid, [[id, role, peer-addr, client-addr], ...]].
func parseJoin(self domain.NodeID, rep domain.Reply) (joined, error) {
	bad := errors.New("--join: malformed JOIN reply")
	if rep.Kind != domain.ReplyArray || len(rep.Array) != 2 || rep.Array[1].Kind != domain.ReplyArray {
		return joined{}, bad
	}
	j := joined{clusterID: string(rep.Array[0].Bulk), peers: map[domain.NodeID]string{}, clients: map[domain.NodeID]string{}}
	for _, row := range rep.Array[1].Array {
		if row.Kind != domain.ReplyArray || len(row.Array) != 4 || row.Array[0].Kind != domain.ReplyInt {
			return joined{}, bad
		}
		id := domain.NodeID(row.Array[0].Int)
		peer, client := string(row.Array[2].Bulk), string(row.Array[3].Bulk)
		if client != "" {
			j.clients[id] = client
		}
		if id != self && peer != "" {
			j.peers[id] = peer
		}
	}
	if len(j.peers) == 0 {
		return joined{}, fmt.Errorf("--join: the cluster named no member with a peer address")
	}
	return j, nil
}
