package app

import (
	"slices"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// lostData lists the followers a leader saw lose their data, sorted.
func lostData(st consensus.Status) []domain.NodeID {
	var out []domain.NodeID
	for id, pr := range st.Progress {
		if pr.LostData {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
