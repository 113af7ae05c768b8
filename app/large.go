package app

import (
	"time"

	"github.com/seshat-kv/seshat/ports"
)

// relayBytesPerSecond is the slowest rate a relayed batch's bytes are
// given to travel to the leader, replicate and be written: a batch
// carrying a large value gets RelayTimeout plus a second per this many
// bytes (a slow rate: a loaded machine copies, checksums and writes a
// value several times on its way), so a 512 MB SET through a follower is
// not cut at 10s.
const relayBytesPerSecond = 1 << 20

// relayTimeout bounds the relay of reqs: base, plus time for their bytes.
func relayTimeout(base time.Duration, reqs []ports.Request) time.Duration {
	return base + time.Duration(ports.RequestBytes(reqs))*time.Second/relayBytesPerSecond
}
