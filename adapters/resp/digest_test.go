package resp

import (
	"context"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// digestKV is a KV that is also a ports.Digester.
type digestKV struct{ *fakeKV }

func (digestKV) Digest(context.Context) (domain.Index, []byte, error) {
	return 42, []byte{0xab, 0x01}, nil
}

func TestDigestCommand(t *testing.T) {
	s := dial(t, serve(t, digestKV{newFakeKV()}, Options{}))
	s.expect("*2\r\n:42\r\n"+bulk("ab01"), "SESHAT.DIGEST")
	s.expect("-ERR wrong number of arguments for 'seshat.digest' command\r\n", "seshat.digest", "x")
	plain := dial(t, serve(t, newFakeKV(), Options{}))
	plain.expect("-ERR SESHAT.DIGEST is not available on this node\r\n", "SESHAT.DIGEST")
}
