// Command floor is the least a Go RESP server does per SET: redcon, a
// map and a mutex, no Raft and no disk. test/bench/cpu-per-set.sh measures
// its CPU per SET beside seshatd's, as the floor under Seshat's front door
// (BENCHMARKS.md, issue 9's bounds). It answers SET with OK, GET with the
// value or nil, PING with PONG, and anything else with an error.
package main

import (
	"flag"
	"log"
	"strings"
	"sync"

	"github.com/tidwall/redcon"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27390", "address to serve RESP on")
	flag.Parse()
	var mu sync.Mutex
	m := map[string][]byte{}
	err := redcon.ListenAndServe(*listen, func(c redcon.Conn, cmd redcon.Command) {
		switch strings.ToLower(string(cmd.Args[0])) {
		case "set":
			if len(cmd.Args) < 3 {
				c.WriteError("ERR wrong number of arguments for 'set' command")
				return
			}
			mu.Lock()
			m[string(cmd.Args[1])] = append([]byte(nil), cmd.Args[2]...)
			mu.Unlock()
			c.WriteString("OK")
		case "get":
			if len(cmd.Args) != 2 {
				c.WriteError("ERR wrong number of arguments for 'get' command")
				return
			}
			mu.Lock()
			v, ok := m[string(cmd.Args[1])]
			mu.Unlock()
			if !ok {
				c.WriteNull()
				return
			}
			c.WriteBulk(v)
		case "ping":
			c.WriteString("PONG")
		default:
			c.WriteError("ERR unknown command '" + string(cmd.Args[0]) + "'")
		}
	}, nil, nil)
	log.Fatal(err)
}
