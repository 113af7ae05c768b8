package main

import (
	"container/heap"

	"github.com/seshat-kv/seshat/domain"
)

// evKind is what an event does when its time comes.
type evKind uint8

const (
	evTick        evKind = iota + 1 // a node's clock ticks
	evDeliver                       // a message reaches its destination
	evLogWrite                      // the writes of a node's log job land (not yet durable)
	evLogDone                       // a node's log job is synced
	evApplyDone                     // a node's apply job completes
	evSnapStatus                    // the transport reports a MsgSnap's fate to its sender
	evCrash                         // a node crashes
	evRestart                       // a crashed node restarts
	evNemesis                       // the fault schedule acts (partition, crash)
	evHeal                          // a partition ends
	evIsolate                       // a node is cut off from the others
	evClient                        // a client sends its current request
	evClientTimer                   // a client gives up waiting
	evMember                        // the membership operator acts
	evRetire                        // a removed node stops for good
)

var evNames = [...]string{
	evTick: "tick", evDeliver: "deliver", evLogWrite: "log-write", evLogDone: "log-done", evApplyDone: "apply-done",
	evSnapStatus: "snap-status",
	evCrash:      "crash", evRestart: "restart", evNemesis: "nemesis", evHeal: "heal", evIsolate: "isolate",
	evClient: "client", evClientTimer: "client-timeout", evMember: "member", evRetire: "retire",
}

func (k evKind) String() string { return evNames[k] }

// event is one entry of the simulator's queue. Events of a node carry the
// incarnation they were scheduled for, so a crash voids them all at once.
type event struct {
	at   int64 // virtual time, microseconds
	seq  uint64
	kind evKind
	node domain.NodeID
	inc  uint64
	msg  domain.Message
	// ok is the reported fate of a snapshot (evSnapStatus), or marks a
	// targeted crash (evCrash).
	ok bool
	// void marks a message lost with its sender's crash (evDeliver).
	void bool
	// client and attempt name a client's request (evClient, evClientTimer).
	client  int
	attempt uint64
}

// eventQueue orders events by (virtual time, sequence number): ties break
// in scheduling order, so the order never depends on anything but the seed.
type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

func (q *eventQueue) push(e *event) { heap.Push(q, e) }
func (q *eventQueue) pop() *event   { return heap.Pop(q).(*event) }
