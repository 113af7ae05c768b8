package resp

import (
	"bytes"
	"slices"
	"testing"

	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// The relay path keeps a relayed payload without cloning it: that is safe
// only while redcon gives each command read from a stream a buffer of its
// own. A command's arguments must survive the reads that follow.
func TestRedconCommandsOwnTheirArguments(t *testing.T) {
	var in bytes.Buffer
	for _, v := range []string{"first", "second", "third"} {
		in.WriteString("*2\r\n$9\r\nRELAY.DO\x00\r\n$" + string(rune('0'+len(v))) + "\r\n" + v + "\r\n")
	}
	rd := redcon.NewReader(&in)
	var got []redcon.Command
	for len(got) < 3 {
		cmds, err := rd.ReadCommands()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, cmds...)
	}
	for i, want := range []string{"first", "second", "third"} {
		if string(got[i].Args[1]) != want {
			t.Fatalf("command %d argument %q, want %q", i, got[i].Args[1], want)
		}
	}
	got[1].Args[1][0] = 'X'
	if string(got[0].Args[1]) != "first" || string(got[2].Args[1]) != "third" {
		t.Fatal("commands share a buffer")
	}
}

// A batch of large commands leaves nothing of them in the connection's
// buffers once it has run; a small one's stay, to be overwritten.
func TestLargeBatchIsForgotten(t *testing.T) {
	for _, tc := range []struct {
		name           string
		size, diverted int
		kept           bool
	}{
		{"small", 100, 0, true},
		{"large", keepBatchBytes, 0, false},
		// A diverted bulk's placeholder is small; the bulk is not.
		{"diverted", 100, keepBatchBytes, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := make([]byte, tc.size)
			cmds := make([]redcon.Command, 1, 4)
			cmds[0] = redcon.Command{Raw: raw, Args: [][]byte{raw[:3], raw[3:]}}
			items := []item{{req: 0, write: func(redcon.Conn) {}}}
			reqs := []ports.Request{{Call: domain.Call{Args: cmds[0].Args}}}
			// As handle leaves them: resliced to empty after a flush.
			forgetLarge(cmds, tc.diverted, items[:0], reqs[:0])
			got := []bool{cmds[0].Raw != nil, items[0].write != nil, reqs[0].Call.Args != nil}
			if want := []bool{tc.kept, tc.kept, tc.kept}; !slices.Equal(got, want) {
				t.Fatalf("after a batch of %d bytes, the commands, items and requests kept: %v, want %v", tc.size, got, want)
			}
		})
	}
}
