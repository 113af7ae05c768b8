package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/redcon"
)

// divertLimits divert bulks of 8 bytes or more, so that small streams
// exercise the large path.
var divertLimits = guardLimits{maxBulk: 1 << 20, maxArgs: 100, maxCommand: 1 << 20, maxInline: 1 << 10, divert: 8}

// chunkConn serves data in reads of at most step bytes, then io.EOF, and
// keeps what is written to it.
type chunkConn struct {
	net.Conn
	data    []byte
	step    int
	written bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data[:min(c.step, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

func (c *chunkConn) Write(p []byte) (int, error) { return c.written.Write(p) }

// readAll reads commands through redcon from gc until an error and
// returns their arguments, placeholders swapped back, and what redcon
// buffered of them (Raw).
func readAll(gc *guardConn) (args [][]string, raw []byte, err error) {
	rd := redcon.NewReader(gc)
	for {
		cmds, err := rd.ReadCommands()
		gc.takeLarge(cmds)
		for _, c := range cmds {
			raw = append(raw, c.Raw...)
			var a []string
			for _, b := range c.Args {
				a = append(a, string(b))
			}
			args = append(args, a)
		}
		if err != nil {
			return args, raw, err
		}
	}
}

func TestDivertedBulksReachTheCommand(t *testing.T) {
	big, big2 := strings.Repeat("v", 20), strings.Repeat("w\r\n", 9)
	for _, tc := range []struct {
		name string
		cmds [][]string
		// diverted: values that must not pass through redcon's buffer;
		// kept: values that must.
		diverted, kept []string
	}{
		{"last argument", [][]string{{"SET", "k", big}}, []string{big}, nil},
		{"middle argument", [][]string{{"SET", "k", big, "KEEPTTL"}}, []string{big}, []string{"KEEPTTL"}},
		{"two in one command", [][]string{{"MSET", "a", big, "b", big2}}, []string{big, big2}, nil},
		{"pipelined", [][]string{{"PING"}, {"SET", big, big2}, {"GET", "k"}}, []string{big, big2}, []string{"PING"}},
		{"at the limit", [][]string{{"SET", "k", "12345678"}}, []string{"12345678"}, nil},
		{"under the limit", [][]string{{"SET", "k", "1234567"}}, nil, []string{"1234567"}},
		{"empty bulk", [][]string{{"SET", "k", ""}, {"SET", "k", big}}, []string{big}, nil},
	} {
		var stream strings.Builder
		for _, c := range tc.cmds {
			stream.WriteString(respCommand(c...))
		}
		stream.WriteString("PING inline\r\n")
		want := append(tc.cmds, []string{"PING", "inline"})
		for _, step := range []int{1, 2, 3, 5, 11, 4096} {
			t.Run(fmt.Sprintf("%s/reads of %d", tc.name, step), func(t *testing.T) {
				gc := &guardConn{Conn: &chunkConn{data: []byte(stream.String()), step: step}, lim: divertLimits}
				got, raw, err := readAll(gc)
				if !errors.Is(err, io.EOF) {
					t.Fatalf("read error %v, want io.EOF", err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("commands (-want +got):\n%s", diff)
				}
				for _, v := range tc.diverted {
					if bytes.Contains(raw, []byte(v)) {
						t.Fatalf("redcon buffered %q, which should have been diverted", v)
					}
				}
				for _, v := range tc.kept {
					if !bytes.Contains(raw, []byte(v)) {
						t.Fatalf("redcon did not buffer %q", v)
					}
				}
				if gc.d.taken != gc.d.sent || len(gc.d.ready) != 0 {
					t.Fatalf("%d placeholders handed out, %d swapped back, %d bulks left", gc.d.sent, gc.d.taken, len(gc.d.ready))
				}
			})
		}
	}
}

// A caller reading in pieces smaller than a header still gets the whole
// stream: the header then goes through undiverted.
func TestDivertWithTinyReads(t *testing.T) {
	stream := respCommand("SET", "k", strings.Repeat("v", 30)) + respCommand("GET", "k")
	for p := 1; p <= 12; p++ {
		gc := &guardConn{Conn: &chunkConn{data: []byte(stream), step: 7}, lim: divertLimits}
		var out []byte
		buf := make([]byte, p)
		for {
			n, err := gc.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
		}
		// Parse what came out with the same connection's placeholders.
		gc.Conn = &chunkConn{data: out, step: 4096}
		gc.stash, gc.stashErr = nil, nil
		plain := &guardConn{Conn: gc.Conn, lim: guardLimits{maxBulk: 1 << 20, maxArgs: 100, maxCommand: 1 << 20, maxInline: 1 << 10}}
		plain.d = gc.d
		got, _, _ := readAll(plain)
		want := [][]string{{"SET", "k", strings.Repeat("v", 30)}, {"GET", "k"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("reads of %d bytes: commands (-want +got):\n%s", p, diff)
		}
	}
}

func TestDivertRefusesABadBody(t *testing.T) {
	for _, tc := range []struct {
		name, stream string
		err          error
		reply        string
	}{
		{"no CRLF after the body", "*1\r\n$10\r\n0123456789XY", errGuard, "-ERR Protocol error: invalid bulk length\r\n"},
		{"cut short", "*1\r\n$10\r\n01234", io.EOF, ""},
		{"over the bulk limit", "*1\r\n$2000000\r\n", errGuard, "-ERR Protocol error: invalid bulk length\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := &chunkConn{data: []byte(tc.stream), step: 3}
			gc := &guardConn{Conn: cc, lim: divertLimits}
			got, _, err := readAll(gc)
			if len(got) != 0 || !errors.Is(err, tc.err) {
				t.Fatalf("got commands %q and error %v, want none and %v", got, err, tc.err)
			}
			if cc.written.String() != tc.reply {
				t.Fatalf("client was told %q, want %q", cc.written.String(), tc.reply)
			}
		})
	}
}

// FuzzDivert: a stream read with large bulks diverted gives the commands
// the same stream gives through redcon alone.
func FuzzDivert(f *testing.F) {
	f.Add([]byte(respCommand("SET", "k", strings.Repeat("v", 20))+"PING\r\n"), uint8(3))
	f.Add([]byte(respCommand("MSET", "a", strings.Repeat("x\r\n", 5), "b", "12345678")), uint8(1))
	f.Add([]byte("*1\r\n$10\r\n0123456789XY"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		plainLim := divertLimits
		plainLim.divert = 0
		want, _, wantErr := readAll(&guardConn{Conn: &chunkConn{data: data, step: 4096}, lim: plainLim})
		got, _, err := readAll(&guardConn{Conn: &chunkConn{data: data, step: 1 + int(step)}, lim: divertLimits})
		if !errors.Is(wantErr, io.EOF) {
			return // redcon or the guard refused the stream; what came before may differ in grouping
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("diverted: error %v where redcon alone read to the end", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("commands, redcon alone (-) and diverted (+):\n%s", diff)
		}
	})
}

func TestLargeRepliesWrittenInPlace(t *testing.T) {
	big1, big2 := strings.Repeat("a", 30), strings.Repeat("b\r\n", 10)
	cc := &chunkConn{}
	gc := &guardConn{Conn: cc}
	// What redcon's buffer holds at two flushes: replies around the
	// placeholders of large ones, then one more.
	first := "+OK\r\n" + string(gc.placeLarge([]byte(big1))) + ":1\r\n" + string(gc.placeLarge([]byte(big2)))
	second := "$-1\r\n" + string(gc.placeLarge([]byte(big1))) + "+PONG\r\n"
	for _, flush := range []string{first, second} {
		if n, err := gc.Write([]byte(flush)); n != len(flush) || err != nil {
			t.Fatalf("Write of %d bytes: %d, %v", len(flush), n, err)
		}
	}
	want := "+OK\r\n$30\r\n" + big1 + "\r\n:1\r\n$30\r\n" + big2 + "\r\n" + "$-1\r\n$30\r\n" + big1 + "\r\n+PONG\r\n"
	if diff := cmp.Diff(want, cc.written.String()); diff != "" {
		t.Fatalf("written (-want +got):\n%s", diff)
	}
	if len(gc.wd.ready) != 0 {
		t.Fatalf("%d large replies still queued", len(gc.wd.ready))
	}
}

// Large values pipelined among small commands, through a server: what
// is set is read back whole, every reply in its place.
func TestLargeValuesThroughTheServer(t *testing.T) {
	addr := serve(t, newFakeKV(), Options{})
	big1 := strings.Repeat("0123456789", divertBytes/10+7)
	big2 := strings.Repeat("x\r\n", divertBytes/3+1)
	raw := cmd("SET", "a", big1) + cmd("PING") + cmd("MSET", "b", big2, "c", "small") +
		cmd("GET", "a") + cmd("ECHO", big2) + cmd("MGET", "b", "c", "a") + cmd("GET", "c")
	got := exchange(t, addr, raw, 7)
	want := []string{"+OK\r\n", "+PONG\r\n", "+OK\r\n", bulk(big1), bulk(big2),
		"*3\r\n" + bulk(big2) + bulk("small") + bulk(big1), bulk("small")}
	if len(got) != len(want) {
		t.Fatalf("%d replies, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reply %d: %d bytes %.40q..., want %d bytes %.40q...", i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
}
