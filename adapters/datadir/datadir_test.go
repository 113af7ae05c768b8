package datadir_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/domain"
)

const testUUID = "0f8fad5b-d9cb-469f-a165-70867728950e"

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := datadir.Load(dir); !errors.Is(err, domain.ErrNoIdentity) {
		t.Fatalf("empty dir: %v, want ErrNoIdentity", err)
	}
	if _, err := datadir.Load(filepath.Join(dir, "absent")); !errors.Is(err, domain.ErrNoIdentity) {
		t.Fatalf("absent dir: %v, want ErrNoIdentity", err)
	}
	want := datadir.Identity{ClusterID: testUUID, NodeID: 3}
	if err := datadir.Save(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := datadir.Load(dir)
	if err != nil || got != want {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, want)
	}
	// Save replaces, and leaves no temp file behind.
	want.ClusterID = datadir.NewUUID()
	if err := datadir.Save(dir, want); err != nil {
		t.Fatal(err)
	}
	if got, err := datadir.Load(dir); err != nil || got != want {
		t.Fatalf("after replace: %+v, %v; want %+v", got, err, want)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != datadir.FileName {
		t.Fatalf("dir holds %v, want only %s", ents, datadir.FileName)
	}
}

func TestSaveRefusesInvalid(t *testing.T) {
	for name, id := range map[string]datadir.Identity{
		"no uuid":    {NodeID: 1},
		"upper case": {ClusterID: strings.ToUpper(testUUID), NodeID: 1},
		"node 0":     {ClusterID: testUUID},
	} {
		if err := datadir.Save(t.TempDir(), id); err == nil {
			t.Errorf("%s: Save accepted %+v", name, id)
		}
	}
	if err := datadir.Save(filepath.Join(t.TempDir(), "absent"), datadir.Identity{ClusterID: testUUID, NodeID: 1}); err == nil {
		t.Error("Save into a missing dir succeeded")
	}
}

// A damaged file is corrupt, never "no identity".
func TestLoadCorrupt(t *testing.T) {
	good := string(datadir.Encode(datadir.Identity{ClusterID: testUUID, NodeID: 7}))
	sum := good[strings.LastIndex(strings.TrimSuffix(good, "\n"), "\n")+1:]
	body := strings.TrimSuffix(good, sum)
	cases := map[string]string{
		"empty":          "",
		"truncated":      good[:len(good)-3],
		"no newline":     strings.TrimSuffix(good, "\n"),
		"bit flip":       strings.Replace(good, "node-id 7", "node-id 8", 1),
		"bad sum":        body + "crc32c zzzzzzzz\n",
		"upper sum":      body + strings.ToUpper(sum),
		"extra line":     good + "x\n",
		"garbage":        "\x00\x01\x02",
		"too big":        strings.Repeat("a", 5000) + "\n",
		"header":         resum("seshat identity v2\ncluster-uuid " + testUUID + "\nnode-id 7\n"),
		"uuid":           resum("seshat identity v1\ncluster-uuid nope\nnode-id 7\n"),
		"node 0":         resum("seshat identity v1\ncluster-uuid " + testUUID + "\nnode-id 0\n"),
		"node leading 0": resum("seshat identity v1\ncluster-uuid " + testUUID + "\nnode-id 07\n"),
		"field order":    resum("seshat identity v1\nnode-id 7\ncluster-uuid " + testUUID + "\n"),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, datadir.FileName), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := datadir.Load(dir)
			if !errors.Is(err, domain.ErrCorrupt) || errors.Is(err, domain.ErrNoIdentity) {
				t.Fatalf("Load = %v, want ErrCorrupt", err)
			}
		})
	}
}

// resum gives body a correct checksum line (so that the parser behind the
// checksum is what refuses it).
func resum(body string) string {
	return string(datadir.AppendChecksum([]byte(body)))
}

func TestUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		u := datadir.NewUUID()
		if err := datadir.CheckUUID(u); err != nil {
			t.Fatal(err)
		}
		if u[14] != '4' || !strings.ContainsRune("89ab", rune(u[19])) {
			t.Fatalf("%s is not a version 4, variant 1 UUID", u)
		}
		if seen[u] {
			t.Fatalf("%s drawn twice", u)
		}
		seen[u] = true
	}
	for _, s := range []string{"", "0f8fad5b-d9cb-469f-a165-70867728950", "0f8fad5bxd9cb-469f-a165-70867728950e",
		"0f8fad5b-d9cb-469f-a165-70867728950g", "0F8FAD5B-D9CB-469F-A165-70867728950E"} {
		if datadir.CheckUUID(s) == nil {
			t.Errorf("CheckUUID(%q) accepted it", s)
		}
	}
	if u, err := datadir.NormalizeUUID(" 0F8FAD5B-D9CB-469F-A165-70867728950E "); err != nil || u != testUUID {
		t.Errorf("NormalizeUUID = %q, %v", u, err)
	}
}

// FuzzDecode: Decode never panics, fails only with ErrCorrupt, and what it
// accepts encodes back to the same bytes. Each input is also tried with a
// correct checksum line, so that the fuzzer reaches the parser behind it.
func FuzzDecode(f *testing.F) {
	good := datadir.Encode(datadir.Identity{ClusterID: testUUID, NodeID: 7})
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte("seshat identity v1\ncluster-uuid x\nnode-id 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, datadir.AppendChecksum(append([]byte(nil), b...))} {
			id, err := datadir.Decode(in)
			if err != nil {
				if !errors.Is(err, domain.ErrCorrupt) {
					t.Fatalf("Decode(%q) = %v, not ErrCorrupt", in, err)
				}
				continue
			}
			if err := id.Validate(); err != nil {
				t.Fatalf("Decode(%q) accepted an invalid %+v: %v", in, id, err)
			}
			if again := datadir.Encode(id); string(again) != string(in) {
				t.Fatalf("Decode(%q) = %+v, which encodes as %q", in, id, again)
			}
		}
	})
}
