package ports

import (
	"errors"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// A relayed batch comes from another node over the network: garbage must
// be refused as corrupt, never crash the leader, and what decodes must
// hold one call per plain request.
func FuzzDecodeRequests(f *testing.F) {
	f.Add(EncodeRequests([]Request{
		{Call: domain.Call{Args: [][]byte{[]byte("SET"), []byte("k"), []byte("v")}}},
		{IsTx: true, Tx: []domain.Call{{DB: 1, Args: [][]byte{[]byte("INCR"), []byte("n")}}}, Watch: []domain.Watch{{Key: []byte("n"), Version: 3}}},
	}))
	f.Add([]byte{1, 3, 2, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		reqs, err := DecodeRequests(b)
		if err != nil {
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("DecodeRequests(%x): %v does not wrap ErrCorrupt", b, err)
			}
			return
		}
		for _, r := range reqs {
			if !r.IsTx && len(r.Call.Args) == 0 {
				t.Fatalf("DecodeRequests(%x) accepted a request with no command", b)
			}
		}
		if _, err := DecodeRequests(EncodeRequests(reqs)); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}
