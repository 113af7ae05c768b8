package chaos

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/redis/go-redis/v9"
)

// The workloads' sizes: registers on regKeys keys per epoch (a new key
// set each nemesis step, so that each key's history stays short enough
// for porcupine), regClients clients of which regClients/regGroups share
// each key; counters and lists with their own clients.
const (
	regKeys    = 100
	regGroups  = 10 // key k is used by the clients c with c%regGroups == k%regGroups
	regClients = 30 // so 3 clients per key, at most 10
	ctrKeys    = 5
	ctrClients = 4
	listKeys   = 5
	listClient = 4
)

// opRecord is one operation's time and outcome, counted per nemesis window.
type opRecord struct {
	call     int64 // ns since the run's start
	out      outcome
	diskFull bool // refused with MISCONF (a leader whose disk is full)
}

// counts are ok / failed / unknown operation counts, and how many of the
// failed were refused for a full disk.
type counts struct{ ok, failed, unknown, diskFull int }

func (c *counts) add(o outcome) {
	switch o {
	case ok:
		c.ok++
	case failed:
		c.failed++
	default:
		c.unknown++
	}
}

func (c counts) String() string {
	s := fmt.Sprintf("ok=%d failed=%d unknown=%d", c.ok, c.failed, c.unknown)
	if c.diskFull > 0 {
		s += fmt.Sprintf(" (disk-full refusals=%d)", c.diskFull)
	}
	return s
}

// workloads runs the register, counter and list clients against a
// cluster until stop, and records everything the checkers need.
type workloads struct {
	start time.Time
	epoch atomic.Int64
	stop  atomic.Bool
	wg    sync.WaitGroup

	// Which node each client talks to: slots[i] is client i's address
	// (registers, then counters, then lists). A membership change moves
	// clients off a node that leaves and onto nodes that join.
	slotMu sync.Mutex
	slots  []string
	gone   map[string]bool // addresses of nodes being or having been removed

	mu      sync.Mutex
	records []opRecord
	reg     []porcupine.Operation
	regCnt  counts
	ctr     [ctrKeys]struct{ acked, unknown, failed int64 }
	ctrCnt  counts
	list    map[string]outcome // element -> outcome of its RPUSH
	listKey map[string]int     // element -> list
	listCnt counts
}

func newWorkloads(addrs []string) *workloads {
	w := &workloads{start: time.Now(), list: map[string]outcome{}, listKey: map[string]int{},
		slots: make([]string, regClients+ctrClients+listClient), gone: map[string]bool{}}
	w.assign(addrs)
	return w
}

// assign spreads the clients over addrs: client i talks to addrs[i%n].
// Each client moves before its next operation (slotClient).
func (w *workloads) assign(addrs []string) {
	if len(addrs) == 0 {
		return
	}
	w.slotMu.Lock()
	defer w.slotMu.Unlock()
	for i := range w.slots {
		w.slots[i] = addrs[i%len(addrs)]
	}
}

func (w *workloads) slot(i int) string {
	w.slotMu.Lock()
	defer w.slotMu.Unlock()
	return w.slots[i]
}

// markLeaving records that the node at addr is being removed.
func (w *workloads) markLeaving(addr string) {
	w.slotMu.Lock()
	defer w.slotMu.Unlock()
	w.gone[addr] = true
}

func (w *workloads) isLeaving(addr string) bool {
	w.slotMu.Lock()
	defer w.slotMu.Unlock()
	return w.gone[addr]
}

// slotClient is one client's connection, to the node its slot names now.
type slotClient struct {
	w    *workloads
	slot int
	addr string
	cl   *redis.Client
}

// client returns the connection to the slot's node, reconnecting if the
// slot moved since the last operation.
func (s *slotClient) client() *redis.Client {
	if a := s.w.slot(s.slot); a != s.addr || s.cl == nil {
		if s.cl != nil {
			s.cl.Close()
		}
		s.addr, s.cl = a, newClient(a)
	}
	return s.cl
}

func (s *slotClient) close() {
	if s.cl != nil {
		s.cl.Close()
	}
}

// classify is the package's classify, except that a write that failed
// on a node being removed has an unknown outcome: the node may have
// relayed it to the leader, or proposed it, before it learned it left.
func (s *slotClient) classify(err error, write bool) outcome {
	o := classify(err, write)
	if o == failed && write && s.w.isLeaving(s.addr) {
		return unknown
	}
	return o
}

func (w *workloads) now() int64 { return time.Since(w.start).Nanoseconds() }

func (w *workloads) record(call int64, o outcome, err error) {
	w.records = append(w.records, opRecord{call: call, out: o, diskFull: err != nil && strings.HasPrefix(err.Error(), "MISCONF")})
}

// run starts every client; seed makes their choices (not their timing)
// repeatable.
func (w *workloads) run(seed uint64) {
	for c := range regClients {
		rng := rand.New(rand.NewPCG(seed, uint64(1000+c)))
		sc := &slotClient{w: w, slot: c}
		w.wg.Go(func() { defer sc.close(); w.registerClient(c, sc, rng) })
	}
	for c := range ctrClients {
		rng := rand.New(rand.NewPCG(seed, uint64(2000+c)))
		sc := &slotClient{w: w, slot: regClients + c}
		w.wg.Go(func() { defer sc.close(); w.counterClient(sc, rng) })
	}
	for c := range listClient {
		rng := rand.New(rand.NewPCG(seed, uint64(3000+c)))
		sc := &slotClient{w: w, slot: regClients + ctrClients + c}
		w.wg.Go(func() { defer sc.close(); w.listClient(c, sc, rng) })
	}
}

// halt stops the clients and waits for their last operations.
func (w *workloads) halt() {
	w.stop.Store(true)
	w.wg.Wait()
}

// pace waits between two operations of a client: longer after one that
// failed, so that clients of a dead node do not spin.
func pace(rng *rand.Rand, o outcome) {
	d := time.Duration(2+rng.IntN(8)) * time.Millisecond
	if o != ok {
		d += 50 * time.Millisecond
	}
	time.Sleep(d)
}

// regInput is one register operation.
type regInput struct {
	Op    string // get, set, setnx, setxx, del
	Key   string
	Value string
}

// regOutput is its answer: a get's value, whether a conditional write or
// a delete acted; Unknown for a write whose outcome is unknown.
type regOutput struct {
	Value   string
	Found   bool
	Acted   bool
	Unknown bool
}

// regState is one register: absent, or a value.
type regState struct {
	Value   string
	Present bool
}

var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(regInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return regState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(regState), input.(regInput), output.(regOutput)
		set := regState{Value: in.Value, Present: true}
		switch in.Op {
		case "get":
			return out.Found == s.Present && (!s.Present || out.Value == s.Value), s
		case "set":
			return true, set
		case "setnx":
			if s.Present {
				return out.Unknown || !out.Acted, s
			}
			return out.Unknown || out.Acted, set
		case "setxx":
			if s.Present {
				return out.Unknown || out.Acted, set
			}
			return out.Unknown || !out.Acted, s
		case "del":
			return out.Unknown || out.Acted == s.Present, regState{}
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		switch {
		case in.Op == "get" && !out.Found:
			return fmt.Sprintf("get(%s) -> nil", in.Key)
		case in.Op == "get":
			return fmt.Sprintf("get(%s) -> %s", in.Key, out.Value)
		case out.Unknown:
			return fmt.Sprintf("%s(%s, %s) -> ?", in.Op, in.Key, in.Value)
		}
		return fmt.Sprintf("%s(%s, %s) -> %v", in.Op, in.Key, in.Value, out.Acted)
	},
	DescribeState: func(state any) string {
		s := state.(regState)
		if !s.Present {
			return "nil"
		}
		return s.Value
	},
}

func (w *workloads) registerClient(c int, sc *slotClient, rng *rand.Rand) {
	for seq := 0; !w.stop.Load(); seq++ {
		cl := sc.client()
		k := rng.IntN(regKeys/regGroups)*regGroups + c%regGroups
		in := regInput{Key: fmt.Sprintf("r:%d:%d", w.epoch.Load(), k), Value: fmt.Sprintf("c%d-%d", c, seq)}
		var out regOutput
		var err error
		ctx, cancel := opCtx()
		call := w.now()
		switch p := rng.IntN(10); {
		case p < 4:
			in.Op, in.Value = "get", ""
			var v string
			v, err = cl.Get(ctx, in.Key).Result()
			out.Value, out.Found = v, err == nil
		case p < 6:
			in.Op = "set"
			err = cl.Set(ctx, in.Key, in.Value, 0).Err()
		case p < 7:
			in.Op = "setnx"
			var r string
			r, err = cl.SetArgs(ctx, in.Key, in.Value, redis.SetArgs{Mode: "NX"}).Result()
			out.Acted = err == nil && r == "OK"
		case p < 8:
			in.Op = "setxx"
			var r string
			r, err = cl.SetArgs(ctx, in.Key, in.Value, redis.SetArgs{Mode: "XX"}).Result()
			out.Acted = err == nil && r == "OK"
		default:
			in.Op, in.Value = "del", ""
			var n int64
			n, err = cl.Del(ctx, in.Key).Result()
			out.Acted = n > 0
		}
		ret := w.now()
		cancel()
		o := sc.classify(err, in.Op != "get")
		w.mu.Lock()
		w.record(call, o, err)
		w.regCnt.add(o)
		switch o {
		case ok:
			w.reg = append(w.reg, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
		case unknown:
			// It may take effect at any time after its call, or never.
			w.reg = append(w.reg, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: regOutput{Unknown: true}, Return: math.MaxInt64})
		}
		w.mu.Unlock()
		pace(rng, o)
	}
}

func (w *workloads) counterClient(sc *slotClient, rng *rand.Rand) {
	for !w.stop.Load() {
		cl := sc.client()
		k := rng.IntN(ctrKeys)
		ctx, cancel := opCtx()
		call := w.now()
		err := cl.Incr(ctx, "ctr:"+strconv.Itoa(k)).Err()
		cancel()
		o := sc.classify(err, true)
		w.mu.Lock()
		w.record(call, o, err)
		w.ctrCnt.add(o)
		switch o {
		case ok:
			w.ctr[k].acked++
		case failed:
			w.ctr[k].failed++
		default:
			w.ctr[k].unknown++
		}
		w.mu.Unlock()
		pace(rng, o)
	}
}

func (w *workloads) listClient(c int, sc *slotClient, rng *rand.Rand) {
	for seq := 0; !w.stop.Load(); seq++ {
		cl := sc.client()
		k := rng.IntN(listKeys)
		el := fmt.Sprintf("e%d-%d", c, seq)
		ctx, cancel := opCtx()
		call := w.now()
		err := cl.RPush(ctx, "list:"+strconv.Itoa(k), el).Err()
		cancel()
		o := sc.classify(err, true)
		w.mu.Lock()
		w.record(call, o, err)
		w.listCnt.add(o)
		w.list[el], w.listKey[el] = o, k
		w.mu.Unlock()
		pace(rng, o)
	}
}

// window counts the operations called in [from, to) (ns since start).
func (w *workloads) window(from, to int64) counts {
	w.mu.Lock()
	defer w.mu.Unlock()
	var c counts
	for _, r := range w.records {
		if r.call >= from && r.call < to {
			c.add(r.out)
			if r.diskFull {
				c.diskFull++
			}
		}
	}
	return c
}
