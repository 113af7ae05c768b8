package app

import (
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
