package relay

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// The SESHAT.DO command written in parts is the one command of one bulk
// string that the leader decodes, and a large value is in it once, not
// copied into a joined payload.
func TestDoCommandParts(t *testing.T) {
	big := bytes.Repeat([]byte("v"), 1<<20)
	batches := [][]ports.Request{
		{{Call: domain.Call{Args: [][]byte{[]byte("SET"), []byte("k"), []byte("v")}}}},
		{
			{Call: domain.Call{DB: 2, Args: [][]byte{[]byte("SET"), []byte("big"), big}}},
			{IsTx: true, Tx: []domain.Call{{Args: [][]byte{[]byte("INCR"), []byte("n")}}}, Watch: []domain.Watch{{Key: []byte("n"), Version: 7}}},
		},
	}
	for i, reqs := range batches {
		parts := doCommand(reqs)
		got := bytes.Join(parts, nil)
		want := appendCommand(nil, []byte(Do), ports.EncodeRequests(reqs))
		if !bytes.Equal(got, want) {
			t.Fatalf("batch %d: parts join to %q, want %q", i, got[:min(len(got), 80)], want[:min(len(want), 80)])
		}
		copies := 0
		for _, p := range parts {
			if bytes.Contains(p, big) {
				copies++
			}
		}
		if i == 1 && copies != 1 {
			t.Fatalf("the large value is in %d parts, want 1", copies)
		}
		// The parts between the headers and the final CRLF are the bulk.
		back, err := ports.DecodeRequests(bytes.Join(parts[1:len(parts)-1], nil))
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(reqs, back); d != "" {
			t.Fatalf("batch %d decodes (-want +got):\n%s", i, d)
		}
	}
}
