package app

import (
	"context"
	"fmt"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

var _ ports.Digester = (*Service)(nil)

// appliedReader is the part of ports.StateMachine Digest needs of the
// reader the service was given (both state machines implement it).
type appliedReader interface {
	Applied() (domain.SnapshotMeta, error)
}

// digestAttempts bounds how often Digest reads again because an Apply
// landed while it read.
const digestAttempts = 50

// Digest implements ports.Digester. It reads the applied index, digests a
// View of the state, and reads the applied index again: the state machine
// changes its data and its applied point together and the index only
// grows, so equal indexes mean the View saw the state at that index. If
// entries keep applying it tries again, a bounded number of times.
func (s *Service) Digest(ctx context.Context) (domain.Index, []byte, error) {
	ar, ok := s.kv.(appliedReader)
	if !ok {
		return 0, nil, fmt.Errorf("app: digest: the state machine's reader does not tell its applied index")
	}
	for range digestAttempts {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		before, err := ar.Applied()
		if err != nil {
			return 0, nil, err
		}
		var d []byte
		err = s.kv.View(func(st keyspace.Store) error {
			var err error
			d, err = keyspace.Digest(st)
			return err
		})
		if err != nil {
			return 0, nil, err
		}
		after, err := ar.Applied()
		if err != nil {
			return 0, nil, err
		}
		if after.Index == before.Index {
			return before.Index, d, nil
		}
	}
	return 0, nil, fmt.Errorf("app: digest: entries kept applying during %d reads; try again", digestAttempts)
}
