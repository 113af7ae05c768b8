package resp

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// digestCmd answers [applied-index, hex digest] of this node's state
// (ports.Digester): the test of convergence asks every node and compares.
const digestCmd = "seshat.digest"

// digestTimeout bounds one SESHAT.DIGEST.
const digestTimeout = 30 * time.Second

func (s *Server) digest() item {
	d, ok := s.kv.(ports.Digester)
	if !ok {
		return errorItem("ERR SESHAT.DIGEST is not available on this node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), digestTimeout)
	defer cancel()
	applied, sum, err := d.Digest(ctx)
	if err != nil {
		return errorItem(oneLine("ERR " + err.Error()))
	}
	return valueItem(domain.ArrayReply(domain.IntReply(int64(applied)), domain.StringReply(hex.EncodeToString(sum))))
}
