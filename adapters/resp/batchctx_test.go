package resp

import (
	"strings"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

// Small batches share a context whose deadline leaves each at least its
// timeout and at most two steps more; a new one is made once the step
// has passed; a batch given longer gets its own.
func TestBatchContextDeadlines(t *testing.T) {
	s := &Server{opts: Options{BatchTimeout: 32 * time.Second}}
	step := time.Second
	t0 := time.Now()
	check := func(name string, now time.Time, d time.Duration, wantShared bool, shared *any) {
		t.Helper()
		ctx, cancel := s.batchContext(now, d)
		defer cancel()
		dl, ok := ctx.Deadline()
		if !ok {
			t.Fatalf("%s: no deadline", name)
		}
		if left := dl.Sub(now); left < d || (wantShared && left > d+2*step) {
			t.Errorf("%s: deadline %v after the start, want between %v and %v", name, left, d, d+2*step)
		}
		if wantShared && shared != nil {
			if *shared != nil && *shared != any(ctx) {
				t.Errorf("%s: a new context, want the shared one", name)
			}
			*shared = ctx
		}
	}
	var first any
	check("first", t0, 32*time.Second, true, &first)
	check("same step", t0.Add(step/2), 32*time.Second+step/4, true, &first)
	check("large batch", t0.Add(step/2), 40*time.Second, false, nil)
	ctx, cancel := s.batchContext(t0.Add(step+time.Millisecond), 32*time.Second)
	defer cancel()
	if any(ctx) == first {
		t.Error("the shared context is still handed out after its step")
	}
	var second any
	check("next step", t0.Add(step+2*time.Millisecond), 32*time.Second, true, &second)
}

// commandName names every command the server or the keyspace knows in
// lowercase, whatever the case it was sent in.
func TestCommandName(t *testing.T) {
	names := []string{"SeshAt.Backup", "a-command-nobody-knows"}
	for name := range arity {
		names = append(names, strings.ToUpper(name))
	}
	for _, spec := range keyspace.Commands() {
		names = append(names, strings.ToUpper(spec.Name[:1])+spec.Name[1:])
	}
	for _, raw := range names {
		got := commandName(keyspace.Lookup([]byte(raw)), []byte(raw))
		if want := strings.ToLower(raw); got != want {
			t.Errorf("commandName(%q) = %q, want %q", raw, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { commandName(nil, []byte("PING")) }); n != 0 {
		t.Errorf("commandName of a local command allocates %v times, want 0", n)
	}
}

// backlogKV is a KV that reports a large backlog; only LargeBacklog is
// called by batchContext.
type backlogKV struct {
	ports.KV
	bytes uint64
}

func (b backlogKV) LargeBacklog() uint64 { return b.bytes }

// The shared context of small batches, and a large batch's own, grow with
// the large writes queued ahead (one second per batchBytesPerSecond), so
// that small writes behind a 100 MB SET are not cut at the plain timeout.
func TestBatchContextGrowsWithBacklog(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    time.Duration
	}{
		{"shared small batch", 32 * time.Second},
		{"large batch", 40 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{opts: Options{BatchTimeout: 32 * time.Second}, kv: backlogKV{bytes: 100 * batchBytesPerSecond}}
			now := time.Now()
			ctx, cancel := s.batchContext(now, tc.d)
			defer cancel()
			dl, ok := ctx.Deadline()
			if !ok {
				t.Fatal("no deadline")
			}
			if left := dl.Sub(now); left < tc.d+99*time.Second {
				t.Errorf("deadline %v after the start with 100 s of backlog ahead, want at least %v", left, tc.d+99*time.Second)
			}
		})
	}
}
