package pebble

import "hash/crc32"

// copyStep bounds one copy or checksum call over a value: copy and
// crc32.Update run in assembly that the Go scheduler cannot preempt, so
// one call over a 500 MB value would hold up every stop-the-world (each
// garbage collection) and with it the node's Raft loop for as long.
const copyStep = 1 << 20

// copyCRC copies src into dst (as copy does) in steps of copyStep and
// returns crc updated with the bytes copied.
func copyCRC(crc uint32, dst, src []byte) uint32 {
	n := min(len(dst), len(src))
	for off := 0; off < n; off += copyStep {
		end := min(off+copyStep, n)
		copy(dst[off:end], src[off:end])
		crc = crc32.Update(crc, castagnoli, dst[off:end])
	}
	return crc
}
