package node

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// The large backlog counts the large entries appended and not applied:
// a truncation drops those it replaces, an apply those it covers.
func TestLargeBacklog(t *testing.T) {
	ent := func(i domain.Index, size int) domain.Entry { return domain.Entry{Index: i, Data: make([]byte, size)} }
	n := &Node{d: &Driver{applied: 4}}
	steps := []struct {
		name    string
		log     []*LogJob
		applied domain.Index
		want    uint64
	}{
		{"appended", []*LogJob{{Entries: []domain.Entry{ent(5, 2<<20), ent(6, 100), ent(7, 3<<20)}}}, 4, 5 << 20},
		{"small appends add nothing", []*LogJob{{Entries: []domain.Entry{ent(8, largeEntryBytes-1)}}}, 4, 5 << 20},
		{"truncated from 7", []*LogJob{{Truncate: true, Entries: []domain.Entry{ent(7, 10)}}}, 4, 2 << 20},
		{"5 applied", nil, 5, 0},
		{"appended again", []*LogJob{{Entries: []domain.Entry{ent(8, 1<<20)}}}, 5, 1 << 20},
		{"truncated away", []*LogJob{{Truncate: true, Entries: []domain.Entry{ent(8, 10)}}}, 5, 0},
	}
	for _, s := range steps {
		n.d.applied = s.applied
		n.noteLarge(Output{Log: s.log})
		n.pruneLarge()
		if got := n.LargeBacklog(); got != s.want {
			t.Fatalf("%s: backlog %d, want %d", s.name, got, s.want)
		}
	}
}

// receivingTransport is a transport that reports large appends in transit
// (as adapters/tcp's does); only LargeBacklog is called.
type receivingTransport struct {
	ports.Transport
	receiving uint64
}

func (t receivingTransport) LargeBacklog() uint64 { return t.receiving }

// A large append still arriving on the transport counts too: a write
// relayed through a follower now is applied after it.
func TestLargeBacklogCountsWhatTheTransportReceives(t *testing.T) {
	n := &Node{d: &Driver{applied: 4}}
	n.noteLarge(Output{Log: []*LogJob{{Entries: []domain.Entry{{Index: 5, Data: make([]byte, 2<<20)}}}}})
	n.pruneLarge()
	n.cfg.Transport = receivingTransport{receiving: 100 << 20}
	if got, want := n.LargeBacklog(), uint64(102<<20); got != want {
		t.Fatalf("backlog %d with 100 MiB arriving and 2 MiB in the log, want %d", got, want)
	}
}
