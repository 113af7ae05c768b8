package resp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// constKV answers every write +OK and every read with one fixed value, at
// no cost, so that a benchmark over it measures the RESP server alone.
type constKV struct{ value []byte }

func (k constKV) Do(_ context.Context, reqs []ports.Request, _ ports.DoOptions) []ports.Reply {
	out := make([]ports.Reply, len(reqs))
	for i, r := range reqs {
		if r.IsWrite() {
			out[i] = ports.Reply{Value: domain.OK}
		} else {
			out[i] = ports.Reply{Value: domain.BulkReply(k.value)}
		}
	}
	return out
}

func (constKV) Versions(context.Context, int, [][]byte) ([]uint64, error) { return nil, nil }
func (constKV) Keyspace(int) ([]ports.DBSize, error)                      { return nil, nil }
func (constKV) Status() ports.KVStatus                                    { return ports.KVStatus{Role: "leader"} }

// BenchmarkConn sends pipelines of SET or GET (16-byte keys, 100-byte
// values, as redis-benchmark -d 100) over loopback to a server over
// constKV and reads the replies; an op is one command, so allocs/op is
// what the RESP layer (redcon's parse included) allocates per request:
//
//	go test -run '^$' -bench Conn -benchmem ./adapters/resp
func BenchmarkConn(b *testing.B) {
	value := strings.Repeat("x", 100)
	for _, test := range []string{"SET", "GET"} {
		for _, pipeline := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/pipeline=%d", test, pipeline), func(b *testing.B) {
				addr := serve(b, constKV{value: []byte(value)}, Options{})
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				var req, reply string
				for k := range pipeline {
					key := fmt.Sprintf("key:%012d", k)
					if test == "SET" {
						req += cmd("SET", key, value)
						reply += "+OK\r\n"
					} else {
						req += cmd("GET", key)
						reply += bulk(value)
					}
				}
				r := bufio.NewReaderSize(c, 64<<10)
				got := make([]byte, len(reply))
				b.ResetTimer()
				for i := 0; i < b.N; i += pipeline {
					if _, err := io.WriteString(c, req); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(r, got); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if string(got) != reply {
					b.Fatalf("reply %q, want %q", got, reply)
				}
			})
		}
	}
}
