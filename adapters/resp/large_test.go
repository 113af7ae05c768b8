package resp

import (
	"bytes"
	"testing"

	"github.com/tidwall/redcon"
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
