package ports

import (
	"context"

	"github.com/seshat-kv/seshat/domain"
)

// Digester is what a KV may also implement to answer SESHAT.DIGEST: the
// index its state machine has applied and keyspace.Digest of the applied
// state at exactly that index, from one consistent read. Two nodes that
// applied the same index must answer the same digest. It is local (no
// read barrier): it describes this node, not the cluster.
type Digester interface {
	Digest(ctx context.Context) (applied domain.Index, digest []byte, err error)
}
