package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/adapters/relay"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
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

// freshDataDir reports whether the node's stores hold nothing yet: no
// term was ever recorded.
func freshDataDir(votes ports.VoteStore) (bool, error) {
	v, err := votes.Vote()
	if err != nil {
		return false, err
	}
	return v.Term == 0, nil
}

// joinCluster asks the member at cfg.join's address (any member: a
// follower relays to the leader) to add this node as a learner, with
// this node's peer and client addresses, retrying TRYAGAIN answers.
func joinCluster(cfg config, log zerolog.Logger) (joined, error) {
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	args := [][]byte{[]byte("SESHAT.MEMBER"), []byte("JOIN"), []byte(strconv.FormatUint(uint64(cfg.id), 10)),
		[]byte(cfg.peerListen), []byte(cfg.listen)}
	log.Info().Str("join", cfg.join).Str("peer_addr", cfg.peerListen).Str("client_addr", cfg.listen).Msg("asking the cluster to add this node")
	for {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		rep, err := relay.SendCommand(rctx, cfg.join, cfg.requirePass, false, args...)
		rcancel()
		retry := err != nil || (rep.IsError() && (strings.HasPrefix(rep.Str, "TRYAGAIN") || strings.HasPrefix(rep.Str, "CLUSTERDOWN")))
		if !retry {
			if rep.IsError() {
				return joined{}, fmt.Errorf("--join %s: the cluster refused this node: %s", cfg.join, rep.Str)
			}
			return parseJoin(cfg.id, rep)
		}
		if ctx.Err() != nil {
			return joined{}, fmt.Errorf("--join %s: no answer within %v (last: %v %v)", cfg.join, joinTimeout, err, rep)
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
