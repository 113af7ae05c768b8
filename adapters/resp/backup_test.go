package resp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// fakeBackup writes body in pieces of step bytes, then fails with err if
// set.
type fakeBackup struct {
	body []byte
	step int
	err  error
}

func (f *fakeBackup) Backup(_ context.Context, w io.Writer) (domain.SnapshotMeta, error) {
	for p := f.body; len(p) > 0; {
		n := min(f.step, len(p))
		if _, err := w.Write(p[:n]); err != nil {
			return domain.SnapshotMeta{}, err
		}
		p = p[n:]
	}
	if f.err != nil {
		return domain.SnapshotMeta{}, f.err
	}
	return domain.SnapshotMeta{Index: 42, Term: 3, Membership: domain.Membership{Voters: []domain.NodeID{1, 2, 3}}}, nil
}

// readBackup reads SESHAT.BACKUP's stream: the bulks' bytes, then the raw
// final reply.
func readBackup(t *testing.T, s *session) ([]byte, string) {
	t.Helper()
	if _, err := io.WriteString(s.c, cmd("SESHAT.BACKUP")); err != nil {
		t.Fatal(err)
	}
	var body []byte
	for {
		raw := readRaw(t, s.r)
		if !strings.HasPrefix(raw, "$") {
			return body, raw
		}
		_, rest, _ := strings.Cut(raw, "\r\n")
		bulk := strings.TrimSuffix(rest, "\r\n")
		if len(bulk) > backupChunk {
			t.Fatalf("a bulk of %d bytes, over %d", len(bulk), backupChunk)
		}
		body = append(body, bulk...)
	}
}

// TestBackupStream: the image arrives whole, in bulks of at most
// backupChunk bytes, then the metadata; a failure part way is an error in
// place of the next bulk; without a Backup the command is refused.
func TestBackupStream(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 3*backupChunk/16+100)
	// Small writes are gathered, one larger than a bulk is cut.
	for _, step := range []int{1000, len(body)} {
		addr := serve(t, newFakeKV(), Options{Backup: &fakeBackup{body: body, step: step}})
		s := dial(t, addr)
		got, last := readBackup(t, s)
		if !bytes.Equal(got, body) {
			t.Fatalf("writes of %d: image: %d bytes, want %d", step, len(got), len(body))
		}
		want := "*5\r\n:42\r\n:3\r\n" + bulk(string(domain.EncodeMembership(domain.Membership{Voters: []domain.NodeID{1, 2, 3}}))) + ":" + strconv.Itoa(len(body)) + "\r\n:2\r\n" // fakeKV is node 2
		if last != want {
			t.Fatalf("writes of %d: final reply %q, want %q", step, last, want)
		}
		s.expect("+PONG\r\n", "PING") // the connection serves on
	}

	failing := serve(t, newFakeKV(), Options{Backup: &fakeBackup{body: body, step: 1000, err: errors.New("disk on fire")}})
	_, last := readBackup(t, dial(t, failing))
	if !strings.HasPrefix(last, "-ERR backup failed: disk on fire") {
		t.Fatalf("failed backup ends with %q", last)
	}
	none := dial(t, serve(t, newFakeKV(), Options{}))
	none.expect("-ERR backups are not served by this node\r\n", "SESHAT.BACKUP")
	none.expect("+OK\r\n", "MULTI")
	none.expect("-ERR 'seshat.backup' inside MULTI is not supported by seshat\r\n", "SESHAT.BACKUP")
}
