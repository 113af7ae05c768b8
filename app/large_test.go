package app

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

func TestRelayTimeoutGrowsWithTheBytes(t *testing.T) {
	small := []ports.Request{{Call: domain.Call{Args: [][]byte{[]byte("SET"), []byte("k"), []byte("v")}}}}
	if got := relayTimeout(10*time.Second, small); got > 10*time.Second+time.Millisecond {
		t.Fatalf("small batch: %v", got)
	}
	big := []ports.Request{{IsTx: true, Tx: []domain.Call{{Args: [][]byte{[]byte("SET"), []byte("k"), make([]byte, 64<<20)}}}}}
	if got := relayTimeout(10*time.Second, big); got < 74*time.Second || got > 75*time.Second {
		t.Fatalf("64 MiB batch: %v, want 74s", got)
	}
}

// A large write's arguments are pointed at its encoding, in the caller's
// own slice, with the same bytes; a small write's are left alone.
func TestShareLargePointsArgumentsAtTheEncoding(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		shared bool
	}{
		{"small", 100, false},
		{"large", shareBytes, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := [][]byte{[]byte("SET"), []byte("k"), bytes.Repeat([]byte("v"), tc.size)}
			want := slices.Clone(args)
			r := ports.Request{Call: domain.Call{Args: args}}
			cmd := domain.EncodeCommand(domain.Command{Time: 1, Calls: []domain.Call{r.Call}})
			shareLarge(r, cmd)
			if !slices.EqualFunc(args, want, bytes.Equal) {
				t.Fatal("the arguments' bytes changed")
			}
			// Shared: what changes in the encoding shows in the argument.
			for i := range cmd {
				cmd[i] = 'x'
			}
			if got := args[2][0] == 'x'; got != tc.shared {
				t.Fatalf("value points into the encoding: %v, want %v", got, tc.shared)
			}
		})
	}
}
