package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"
)

// opKind is a client operation.
type opKind uint8

const (
	opPut opKind = iota + 1
	opGet
	opDel
)

// kvInput is a client operation as porcupine sees it.
type kvInput struct {
	Op    opKind
	Key   string
	Value string // for opPut
}

func (in kvInput) String() string {
	switch in.Op {
	case opPut:
		return fmt.Sprintf("put(%s,%s)", in.Key, in.Value)
	case opGet:
		return fmt.Sprintf("get(%s)", in.Key)
	case opDel:
		return fmt.Sprintf("del(%s)", in.Key)
	}
	return "?"
}

// kvOutput is what a get returned; writes return nothing.
type kvOutput struct {
	Value string
	Found bool
}

func (out kvOutput) String() string {
	if !out.Found {
		return "<none>"
	}
	return out.Value
}

// history records client operations with virtual call and return times.
// A write whose outcome is unknown keeps the return time endOfTime, so it
// may take effect at any point after its call, or never; an operation that
// certainly had no effect (a read never answered, a write never appended)
// is dropped.
type history struct {
	ops     []porcupine.Operation
	dropped []bool
}

func (h *history) call(client int, in kvInput, at int64) int {
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: at, Output: kvOutput{}, Return: endOfTime})
	h.dropped = append(h.dropped, false)
	return len(h.ops) - 1
}

func (h *history) ret(id int, at int64, out kvOutput) {
	h.ops[id].Output = out
	h.ops[id].Return = at
}

func (h *history) drop(id int) { h.dropped[id] = true }

// operations returns the history for porcupine. A read still waiting at
// the end never returned: it is dropped. A write still waiting is unknown.
func (h *history) operations() []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(h.ops))
	for i, op := range h.ops {
		if h.dropped[i] || (op.Input.(kvInput).Op == opGet && op.Return == endOfTime) {
			continue
		}
		out = append(out, op)
	}
	return out
}

// kvState is the model's state for one key.
type kvState struct {
	value string
	found bool
}

// kvModel is a key-value register per key; histories are partitioned by
// key, which porcupine checks independently.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		var keys []string
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).Key
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
	Init: func() any { return kvState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in := state.(kvState), input.(kvInput)
		switch in.Op {
		case opPut:
			return true, kvState{value: in.Value, found: true}
		case opDel:
			return true, kvState{}
		default:
			out := output.(kvOutput)
			return out.Found == st.found && out.Value == st.value, st
		}
	},
	DescribeOperation: func(input, output any) string {
		in := input.(kvInput)
		if in.Op == opGet {
			return fmt.Sprintf("%v -> %v", in, output.(kvOutput))
		}
		return in.String()
	},
}

// linTimeout bounds porcupine's search; it is generous, and a check that
// runs out of it is reported as a warning, not a violation.
const linTimeout = 30 * time.Second

// checkLinearizable runs porcupine on a history: "ok", "illegal" or
// "unknown" (timed out).
func checkLinearizable(ops []porcupine.Operation) string {
	switch porcupine.CheckOperationsTimeout(kvModel, ops, linTimeout) {
	case porcupine.Ok:
		return "ok"
	case porcupine.Illegal:
		return "illegal"
	}
	return "unknown"
}

// checkHistory checks the clients' history at the end of a run.
func (s *sim) checkHistory() string {
	ops := s.hist.operations()
	v := checkLinearizable(ops)
	s.tr.linef(s.now, s.step, "history ops=%d", len(ops))
	if v == "illegal" {
		s.fail("linearizability", "porcupine rejects the history of %d operations", len(ops))
		if s.opts.vizDir != "" {
			path := filepath.Join(s.opts.vizDir, fmt.Sprintf("seed-%d.html", s.seed))
			_, info := porcupine.CheckOperationsVerbose(kvModel, ops, linTimeout)
			if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
				fmt.Fprintf(os.Stderr, "sim: seed %d: visualization: %v\n", s.seed, err)
			} else {
				fmt.Fprintf(os.Stderr, "sim: seed %d: history visualized in %s\n", s.seed, path)
			}
		}
	}
	return v
}
