package spawn

import (
	"math/rand/v2"
	"strconv"
)

// LargeValue is n bytes that differ from position to position (a random
// 1 MiB block from seed, each copy of it marked with its number), cheap to
// build, for the tests and benchmarks of large values.
func LargeValue(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(rng.Uint32())
	}
	v := make([]byte, n)
	for off := 0; off < n; off += len(block) {
		k := copy(v[off:], block)
		copy(v[off:off+k], strconv.Itoa(off/len(block)))
	}
	return v
}
