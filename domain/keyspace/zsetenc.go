package keyspace

import (
	"encoding/binary"
	"math"
	"strconv"
)

// A sorted set's elements come in two kinds, told apart by the sub-key's
// first byte: zMemberTag | member holds the member's score (8 bytes, the
// float64's bits), and zScoreTag | sortable score | member (empty value)
// is the score-ordered index that ranges and ranks walk. Both are written
// and deleted together; Count counts members.
const (
	zMemberTag = 'm'
	zScoreTag  = 's'
)

func encodeScore(f float64) []byte {
	return binary.BigEndian.AppendUint64(nil, math.Float64bits(f))
}

func decodeScore(b []byte) float64 {
	if len(b) != 8 {
		return math.NaN()
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b))
}

// sortableScore maps f to 8 bytes whose bytewise order is f's numeric
// order; -0 sorts as 0 (Redis compares them equal, then by member).
func sortableScore(f float64) uint64 {
	if f == 0 {
		f = 0
	}
	b := math.Float64bits(f)
	if b&(1<<63) != 0 {
		return ^b
	}
	return b | 1<<63
}

func unsortScore(u uint64) float64 {
	if u&(1<<63) != 0 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^u)
}

func zMemberKey(member []byte) []byte {
	return append([]byte{zMemberTag}, member...)
}

func zScoreKey(score float64, member []byte) []byte {
	k := make([]byte, 0, 9+len(member))
	k = append(k, zScoreTag)
	k = binary.BigEndian.AppendUint64(k, sortableScore(score))
	return append(k, member...)
}

// formatScore writes a score as Redis replies with it: "%.17g", and
// "inf" or "-inf".
func formatScore(f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return []byte("inf")
	case math.IsInf(f, -1):
		return []byte("-inf")
	}
	return strconv.AppendFloat(nil, f, 'g', 17, 64)
}
