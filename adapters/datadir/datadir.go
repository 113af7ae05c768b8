package datadir

import (
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

// FileName is the identity file's name inside the data dir.
const FileName = "seshat-identity"

// maxFileBytes bounds what Load reads: a valid file is under 100 bytes.
const maxFileBytes = 4 << 10

const header = "seshat identity v1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Identity is who a data dir belongs to.
type Identity struct {
	// ClusterID is the cluster's UUID, RFC 4122 text form (lower case).
	ClusterID string
	// NodeID is this node's id in that cluster, non-zero.
	NodeID domain.NodeID
}

// Validate checks that both fields are set and well formed.
func (id Identity) Validate() error {
	if err := CheckUUID(id.ClusterID); err != nil {
		return err
	}
	if id.NodeID == domain.None {
		return errors.New("datadir: node id 0")
	}
	return nil
}

// Load reads the identity of the data dir dir. It returns an error wrapping
// domain.ErrNoIdentity when dir (or the file) does not exist, one wrapping
// domain.ErrCorrupt when the file is there but damaged, and the I/O error
// otherwise.
func Load(dir string) (Identity, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Identity{}, fmt.Errorf("datadir: %s: %w", dir, domain.ErrNoIdentity)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("datadir: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return Identity{}, fmt.Errorf("datadir: read %s: %w", path, err)
	}
	id, err := Decode(b)
	if err != nil {
		return Identity{}, fmt.Errorf("datadir: %s: %w", path, err)
	}
	return id, nil
}

// Save stores id in the data dir dir (which must exist), replacing any
// identity there, atomically and durably: when it returns nil the identity
// survives a crash.
func Save(dir string, id Identity) (err error) {
	if err := id.Validate(); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, FileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(Encode(id)); err != nil {
		return fmt.Errorf("datadir: write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("datadir: sync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("datadir: close %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, FileName)); err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("datadir: sync dir %s: %w", dir, err)
	}
	return nil
}

// Encode returns the file's bytes for id.
func Encode(id Identity) []byte {
	return AppendChecksum(fmt.Appendf(nil, "%s\ncluster-uuid %s\nnode-id %d\n", header, id.ClusterID, uint64(id.NodeID)))
}

// AppendChecksum appends the checksum line of body to it.
func AppendChecksum(body []byte) []byte {
	return fmt.Appendf(body, "crc32c %08x\n", crc32.Checksum(body, castagnoli))
}

// Decode parses a file written by Encode. Any deviation (a bad checksum, a
// missing or extra line, a malformed field) is an error wrapping
// domain.ErrCorrupt.
func Decode(b []byte) (Identity, error) {
	corrupt := func(format string, args ...any) (Identity, error) {
		return Identity{}, fmt.Errorf("identity file: %s: %w", fmt.Sprintf(format, args...), domain.ErrCorrupt)
	}
	if len(b) > maxFileBytes {
		return corrupt("%d bytes, more than %d", len(b), maxFileBytes)
	}
	s := string(b)
	if !strings.HasSuffix(s, "\n") {
		return corrupt("truncated (no final newline)")
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 4 {
		return corrupt("%d lines, want 4", len(lines))
	}
	sumText, ok := strings.CutPrefix(lines[3], "crc32c ")
	if !ok || len(sumText) != 8 {
		return corrupt("last line %q is not the checksum", lines[3])
	}
	sum, err := strconv.ParseUint(sumText, 16, 32)
	if err != nil || strings.ToLower(sumText) != sumText {
		return corrupt("checksum %q is not 8 lower-case hex digits", sumText)
	}
	body := s[:len(s)-len(lines[3])-1]
	if got := crc32.Checksum([]byte(body), castagnoli); got != uint32(sum) {
		return corrupt("checksum %08x, content sums to %08x", sum, got)
	}
	if lines[0] != header {
		return corrupt("first line %q, want %q", lines[0], header)
	}
	uuid, ok := strings.CutPrefix(lines[1], "cluster-uuid ")
	if !ok {
		return corrupt("second line %q is not cluster-uuid", lines[1])
	}
	if err := CheckUUID(uuid); err != nil {
		return corrupt("%v", err)
	}
	nodeText, ok := strings.CutPrefix(lines[2], "node-id ")
	if !ok {
		return corrupt("third line %q is not node-id", lines[2])
	}
	n, err := strconv.ParseUint(nodeText, 10, 64)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != nodeText {
		return corrupt("node id %q is not a non-zero decimal", nodeText)
	}
	return Identity{ClusterID: uuid, NodeID: domain.NodeID(n)}, nil
}

// NewUUID returns a random (version 4) UUID in RFC 4122 text form.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// CheckUUID reports whether s is a UUID in RFC 4122 text form: 36
// characters, lower-case hex digits in groups of 8-4-4-4-12. (Lower case
// only, so that one UUID has one spelling and compares equal as a string;
// NormalizeUUID lowers an operator's input first.)
func CheckUUID(s string) error {
	bad := func() error {
		return fmt.Errorf("datadir: cluster UUID %q is not of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (lower-case hex)", s)
	}
	if len(s) != 36 {
		return bad()
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return bad()
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return bad()
			}
		}
	}
	return nil
}

// NormalizeUUID lowers s and checks it with CheckUUID.
func NormalizeUUID(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	return s, CheckUUID(s)
}
