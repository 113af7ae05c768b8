package pebble

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// The kill -9 test: a child process (this test binary, re-executed with
// SESHAT_CRASH_CHILD=1) writes to a DB in a real directory with sync on,
// announcing each step ("begin ...") before it starts and acknowledging it
// ("ack ...") once it is durable. The parent SIGKILLs it at a random
// moment, reopens the DB and checks that it holds exactly the state after
// the last acknowledged step or after the step that was under way: every
// acknowledged write is there, nothing is half done, no value is wrong.
//
// A failure prints its seed. The seed fixes the child's steps and the
// delays before each kill, not where in the child's work the kill lands
// (that depends on the disk and the scheduler), so a rerun with it replays
// the same workload and kill pattern, not necessarily the same interleaving:
//
//	SESHAT_CRASH_SEED=<seed> go test -run TestKill9 ./adapters/pebble

const (
	crashKeys        = 64   // keys k0..k63 written by apply steps
	crashRestoreKeys = 1500 // keys r0.. written by restore steps
)

// Deterministic content, so that the parent can rebuild what the child
// wrote from the step lines alone.

func crashEntry(i domain.Index, t domain.Term) domain.Entry {
	data := bytes.Repeat(fmt.Appendf(nil, "%d:%d;", i, t), int(i%7)+1)
	return domain.Entry{Index: i, Term: t, Type: domain.EntryNormal, Data: data}
}

func crashCommand(i domain.Index) domain.Command {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	var ops []domain.Op
	for j := range 1 + r.IntN(6) {
		key := fmt.Appendf(nil, "k%d", r.IntN(crashKeys))
		if r.IntN(5) == 0 {
			ops = append(ops, domain.Op{Kind: domain.OpDel, Key: key})
		} else {
			ops = append(ops, domain.Op{Kind: domain.OpSet, Key: key, Value: fmt.Appendf(nil, "v%d.%d", i, j)})
		}
	}
	return domain.Command{Ops: ops}
}

func crashRestoreImage(at domain.Index) map[string]string {
	m := map[string]string{}
	for j := range crashRestoreKeys {
		m[fmt.Sprintf("r%d", j)] = fmt.Sprintf("R%d.%d", at, j)
	}
	m["k1"] = fmt.Sprintf("restored@%d", at)
	return m
}

// crashModel is the parent's idea of the DB.
type crashModel struct {
	first, last domain.Index
	terms       map[domain.Index]domain.Term
	vote        domain.Vote
	applied     domain.Index
	data        map[string]string
}

func (m crashModel) clone() crashModel {
	m.terms = maps.Clone(m.terms)
	m.data = maps.Clone(m.data)
	return m
}

// step applies one step line's fields ("log from lo hi term", "vote t v",
// "apply lo hi", "purge upTo", "restore at") to m. truncOnly limits a log
// step to its truncation (the truncation and the append are two writes).
func (m *crashModel) step(f []string, truncOnly bool) error {
	n := make([]uint64, len(f)-1)
	for k := range n {
		v, err := strconv.ParseUint(f[k+1], 10, 64)
		if err != nil {
			return fmt.Errorf("bad step %q", f)
		}
		n[k] = v
	}
	switch {
	case f[0] == "log" && len(n) == 4:
		from, lo, hi, term := domain.Index(n[0]), domain.Index(n[1]), domain.Index(n[2]), domain.Term(n[3])
		if from > 0 && from <= m.last {
			for i := from; i <= m.last; i++ {
				delete(m.terms, i)
			}
			m.last = from - 1
		}
		if truncOnly {
			return nil
		}
		if lo != m.last+1 {
			return fmt.Errorf("step %q does not follow last %d", f, m.last)
		}
		for i := lo; i <= hi; i++ {
			m.terms[i] = term
		}
		m.last = hi
	case f[0] == "purge" && len(n) == 1:
		for i := m.first; i <= domain.Index(n[0]); i++ {
			delete(m.terms, i)
		}
		m.first = domain.Index(n[0]) + 1
		m.last = max(m.last, domain.Index(n[0]))
	case f[0] == "vote" && len(n) == 2:
		m.vote = domain.Vote{Term: domain.Term(n[0]), VotedFor: domain.NodeID(n[1])}
	case f[0] == "apply" && len(n) == 2:
		for i := domain.Index(n[0]); i <= domain.Index(n[1]); i++ {
			if i != m.applied+1 {
				return fmt.Errorf("apply of %d after %d", i, m.applied)
			}
			for _, op := range crashCommand(i).Ops {
				if op.Kind == domain.OpSet {
					m.data[string(op.Key)] = string(op.Value)
				} else {
					delete(m.data, string(op.Key))
				}
			}
			m.applied = i
		}
	case f[0] == "restore" && len(n) == 1:
		m.applied = domain.Index(n[0])
		m.data = crashRestoreImage(m.applied)
	default:
		return fmt.Errorf("unknown step %q", f)
	}
	return nil
}

// diff returns how the DB differs from m, or "".
func (m crashModel) diff(d *DB) string {
	s := d.LogStore()
	first, err1 := s.FirstIndex()
	last, err2 := s.LastIndex()
	if err := errors.Join(err1, err2); err != nil {
		return err.Error()
	}
	if first != m.first || last != m.last {
		return fmt.Sprintf("log [%d,%d], want [%d,%d]", first, last, m.first, m.last)
	}
	if last >= first {
		es, err := s.Entries(first, last+1, 0)
		if err != nil {
			return fmt.Sprintf("entries: %v", err)
		}
		for _, e := range es {
			want := crashEntry(e.Index, m.terms[e.Index])
			if e.Term != want.Term || !bytes.Equal(e.Data, want.Data) {
				return fmt.Sprintf("entry %d: term %d data %q, want term %d", e.Index, e.Term, e.Data, want.Term)
			}
		}
	}
	v, err := d.VoteStore().Vote()
	if err != nil || v != m.vote {
		return fmt.Sprintf("vote %+v (%v), want %+v", v, err, m.vote)
	}
	kv := d.StateMachine()
	meta, err := kv.Applied()
	if err != nil || meta.Index != m.applied {
		return fmt.Sprintf("applied %d (%v), want %d", meta.Index, err, m.applied)
	}
	for j := range crashKeys + crashRestoreKeys {
		key := fmt.Sprintf("k%d", j)
		if j >= crashKeys {
			key = fmt.Sprintf("r%d", j-crashKeys)
		}
		got, err := kv.Get([]byte(key))
		want, ok := m.data[key]
		switch {
		case !ok && !errors.Is(err, domain.ErrNotFound):
			return fmt.Sprintf("key %s = %q (%v), want none", key, got, err)
		case ok && (err != nil || string(got) != want):
			return fmt.Sprintf("key %s = %q (%v), want %q", key, got, err, want)
		}
	}
	return ""
}

func TestKill9(t *testing.T) {
	if os.Getenv("SESHAT_CRASH_CHILD") == "1" {
		crashChild()
		return
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SESHAT_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	kills := 60
	if testing.Short() {
		kills = 15
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce: SESHAT_CRASH_SEED=%d go test -run TestKill9 ./adapters/pebble", seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	model := crashModel{first: 1, terms: map[domain.Index]domain.Term{}, data: map[string]string{}}
	start := time.Now()
	var acks, crashedMidStep, runs int
	killedIn := map[string]int{} // the kind of step under way at each kill
	for kill := range kills {
		if kill >= 50 && time.Since(start) > 45*time.Second {
			t.Logf("stopping after %d kills: time budget spent", kill)
			break
		}
		lines, stderr := runChildAndKill(t, dir, rng, kill, seed)
		// Replay the child's lines: acknowledged steps are certain, the one
		// begun and not acknowledged may or may not have happened.
		var pending []string
		for _, line := range lines {
			f := strings.Fields(line)
			switch {
			case len(f) > 1 && f[0] == "begin":
				if pending != nil {
					t.Fatalf("kill %d: %q begun while %q pending", kill, line, pending)
				}
				pending = f[1:]
			case len(f) > 1 && f[0] == "ack":
				if !slices.Equal(f[1:], pending) {
					t.Fatalf("kill %d: %q acknowledges %q", kill, line, pending)
				}
				if err := model.step(pending, false); err != nil {
					t.Fatalf("kill %d: %v", kill, err)
				}
				pending = nil
				acks++
			default:
				t.Fatalf("kill %d: child wrote %q; stderr:\n%s", kill, line, stderr)
			}
		}
		candidates := []crashModel{model}
		if pending == nil {
			killedIn["none"]++
		} else {
			killedIn[pending[0]]++
		}
		if pending != nil {
			if pending[0] == "log" && pending[1] != "0" {
				c := model.clone()
				if err := c.step(pending, true); err != nil {
					t.Fatalf("kill %d: %v", kill, err)
				}
				candidates = append(candidates, c)
			}
			c := model.clone()
			if err := c.step(pending, false); err != nil {
				t.Fatalf("kill %d: %v", kill, err)
			}
			candidates = append(candidates, c)
		}
		db, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatalf("kill %d: reopen: %v", kill, err)
		}
		var diffs []string
		match := -1
		for k, c := range candidates {
			d := c.diff(db)
			if d == "" {
				match = k
				break
			}
			diffs = append(diffs, d)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if match < 0 {
			t.Fatalf("kill %d: the DB matches no state the child could have reached (pending %q):\n%s\nchild stderr:\n%s",
				kill, pending, strings.Join(diffs, "\n"), stderr)
		}
		if match > 0 {
			crashedMidStep++
		}
		model = candidates[match]
		runs++
	}
	kills = min(kills, runs)
	t.Logf("%d kills (step under way: %v), %d acknowledged steps, %d kills kept part of an unacknowledged step, log [%d,%d], applied %d, in %v",
		kills, killedIn, acks, crashedMidStep, model.first, model.last, model.applied, time.Since(start).Round(time.Millisecond))
	if acks < kills {
		t.Fatalf("only %d steps acknowledged in %d runs: the child hardly ran", acks, kills)
	}
}

// runChildAndKill starts a child on dir, kills it with SIGKILL at a random
// moment and returns the step lines it wrote and its stderr.
//
// The child prints "ready" on stdout but writes its step lines to a file:
// a write to a pipe wakes the reader, and the scheduler then tends to run
// the parent (and its kill) right after each line, so that most kills
// would land between steps instead of inside them.
func runChildAndKill(t *testing.T, dir string, rng *rand.Rand, kill int, seed uint64) ([]string, string) {
	t.Helper()
	steps := filepath.Join(t.TempDir(), "steps")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		"SESHAT_CRASH_CHILD=1",
		"SESHAT_CRASH_DIR="+dir,
		"SESHAT_CRASH_STEPS="+steps,
		fmt.Sprintf("SESHAT_CRASH_CHILD_SEED=%d", seed+uint64(kill)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ready <- sc.Scan() && sc.Text() == "ready"
		_, _ = io.Copy(io.Discard, out)
	}()
	// Mostly kill while the child is working; sometimes while it is still
	// opening the DB (recovering from the last kill).
	if rng.IntN(8) == 0 {
		time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond)
	} else {
		select {
		case ok := <-ready:
			if !ok {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("kill %d: child failed before ready; stderr:\n%s", kill, stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("kill %d: child not ready after 20s; stderr:\n%s", kill, stderr.String())
		}
		time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("kill %d: child ended with %v, not by SIGKILL; stderr:\n%s", kill, err, stderr.String())
	}
	b, err := os.ReadFile(steps)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(b)) {
		if !strings.HasSuffix(line, "\n") {
			t.Fatalf("kill %d: torn step line %q", kill, line)
		}
		lines = append(lines, strings.TrimSuffix(line, "\n"))
	}
	return lines, stderr.String()
}

// crashChild is the child: it opens the DB and runs random steps until it
// is killed, printing each step before and after.
func crashChild() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	seed, _ := strconv.ParseUint(os.Getenv("SESHAT_CRASH_CHILD_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 1))
	db, err := Open(Options{Dir: os.Getenv("SESHAT_CRASH_DIR"), RestoreBatchSize: 8 << 10})
	if err != nil {
		fail(err)
	}
	s, kv, vs := db.LogStore(), db.StateMachine(), db.VoteStore()
	steps, err := os.OpenFile(os.Getenv("SESHAT_CRASH_STEPS"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fail(err)
	}
	say := func(line string) {
		// One write per line: the line is in the page cache whole or not
		// at all when the kill comes, and the page cache survives it.
		if _, err := steps.WriteString(line + "\n"); err != nil {
			fail(err)
		}
	}
	check := func(err error) {
		if err != nil {
			fail(err)
		}
	}
	if _, err := os.Stdout.WriteString("ready\n"); err != nil {
		fail(err)
	}
	for {
		first, err := s.FirstIndex()
		check(err)
		last, err := s.LastIndex()
		check(err)
		term := domain.Term(1)
		if last >= first {
			term, err = s.Term(last)
			check(err)
		}
		meta, err := kv.Applied()
		check(err)
		switch p := rng.IntN(100); {
		case p < 50:
			var from domain.Index
			lo := last + 1
			if last >= first && rng.IntN(5) == 0 {
				back := min(last, domain.Index(rng.IntN(5))) // Index is unsigned
				from = max(first, last-back)
				lo, term = from, term+1
			}
			hi := lo + domain.Index(rng.IntN(16))
			step := fmt.Sprintf("log %d %d %d %d", from, lo, hi, term)
			say("begin " + step)
			if from > 0 {
				check(s.TruncateSuffix(from))
			}
			var es []domain.Entry
			for i := lo; i <= hi; i++ {
				es = append(es, crashEntry(i, term))
			}
			check(s.Append(es))
			check(s.Sync())
			say("ack " + step)
		case p < 58:
			if last < first+40 {
				continue
			}
			upTo := first + domain.Index(rng.IntN(20))
			step := fmt.Sprintf("purge %d", upTo)
			say("begin " + step)
			check(s.Purge(upTo))
			check(s.Sync())
			say("ack " + step)
		case p < 70:
			v, err := vs.Vote()
			check(err)
			nv := domain.Vote{Term: v.Term + 1, VotedFor: domain.NodeID(1 + rng.IntN(5))}
			step := fmt.Sprintf("vote %d %d", nv.Term, nv.VotedFor)
			say("begin " + step)
			check(vs.SetVote(nv)) // durable on return: no Sync
			say("ack " + step)
		case p < 96:
			lo := meta.Index + 1
			hi := lo + domain.Index(rng.IntN(8))
			step := fmt.Sprintf("apply %d %d", lo, hi)
			var es []domain.Entry
			for i := lo; i <= hi; i++ {
				es = append(es, domain.Entry{Index: i, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(crashCommand(i))})
			}
			say("begin " + step)
			_, err := kv.Apply(es)
			check(err)
			check(kv.Sync())
			say("ack " + step)
		default:
			at := meta.Index + 1000
			image, imeta := crashImage(at)
			step := fmt.Sprintf("restore %d", at)
			say("begin " + step)
			check(kv.Restore(imeta, bytes.NewReader(image)))
			say("ack " + step)
		}
	}
}

// crashImage writes the snapshot stream of crashRestoreImage(at) directly,
// in the format Snapshot writes, without a DB to build it in: the child
// should spend its time writing, not preparing.
func crashImage(at domain.Index) ([]byte, domain.SnapshotMeta) {
	meta := domain.SnapshotMeta{Index: at, Term: 1}
	var buf bytes.Buffer
	buf.Write(snapMagic)
	cw := &chunkWriter{w: &buf}
	cw.start(chunkMeta)
	cw.buf = append(cw.buf, encodeSnapMeta(meta)...)
	_ = cw.flush()
	image := crashRestoreImage(at)
	cw.start(chunkData)
	// Rows go in the order Snapshot writes them: by keyspace hash, then key.
	keys := slices.SortedFunc(maps.Keys(image), func(a, b string) int {
		if c := cmp.Compare(keyspace.Hash([]byte(a)), keyspace.Hash([]byte(b))); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, k := range keys {
		rec := keyspace.EncodeRecord(keyspace.Record{Value: []byte(image[k]), Version: uint64(at)})
		cw.buf = binary.AppendUvarint(cw.buf, 0) // database
		cw.buf = binary.AppendUvarint(cw.buf, uint64(len(k)))
		cw.buf = append(cw.buf, k...)
		cw.buf = binary.AppendUvarint(cw.buf, uint64(len(rec)))
		cw.buf = append(cw.buf, rec...)
		if cw.payloadLen() >= 4<<10 {
			_ = cw.flush()
			cw.start(chunkData)
		}
	}
	_ = cw.flush()
	cw.start(chunkEnd)
	cw.buf = binary.BigEndian.AppendUint64(cw.buf, uint64(len(image)))
	_ = cw.flush()
	return buf.Bytes(), meta
}

// TestTornWALTail damages the newest log record on disk, as a crash in the
// middle of writing it would (a torn write) or as a bad sector would, and
// checks that the entry is then gone or reported as corrupt, never read
// back wrong.
func TestTornWALTail(t *testing.T) {
	for _, damage := range []string{"truncate", "flip"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			db, err := Open(Options{Dir: dir})
			must(t, err)
			s := db.LogStore()
			for i := domain.Index(1); i <= 20; i++ {
				e := crashEntry(i, 1)
				if i == 20 {
					e.Data = bytes.Repeat([]byte{'x'}, 1000)
				}
				must(t, s.Append([]domain.Entry{e}))
				must(t, s.Sync())
			}
			must(t, db.Close())

			wals, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			if len(wals) == 0 {
				t.Fatal("no WAL file")
			}
			slices.Sort(wals)
			wal := wals[len(wals)-1]
			b, err := os.ReadFile(wal)
			must(t, err)
			at := bytes.LastIndex(b, bytes.Repeat([]byte{'x'}, 1000))
			if at < 0 {
				t.Fatal("entry 20 is not in the newest WAL file")
			}
			if damage == "truncate" {
				b = b[:at+500]
			} else {
				b[at+500] ^= 0x01
			}
			must(t, os.WriteFile(wal, b, 0o644))

			db, err = Open(Options{Dir: dir})
			if err != nil {
				if !errors.Is(err, domain.ErrCorrupt) {
					t.Fatalf("reopen: %v, want success or ErrCorrupt", err)
				}
				return
			}
			defer db.Close()
			s = db.LogStore()
			last, err := s.LastIndex()
			must(t, err)
			if last != 19 {
				t.Fatalf("last index %d after damaging entry 20, want 19", last)
			}
			es, err := s.Entries(1, 20, 0)
			must(t, err)
			for _, e := range es {
				if want := crashEntry(e.Index, 1); !bytes.Equal(e.Data, want.Data) {
					t.Fatalf("entry %d = %q, want %q", e.Index, e.Data, want.Data)
				}
			}
			// The log goes on from the intact prefix.
			must(t, s.Append([]domain.Entry{crashEntry(20, 2)}))
			must(t, s.Sync())
		})
	}
}
