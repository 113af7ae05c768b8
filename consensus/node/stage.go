package node

import "sync"

// stage runs jobs of one kind on a goroutine of its own, in the order they
// were pushed, and reports each on done. push never blocks, so the loop
// that pushes never waits for the stage; the stage waits for the loop only
// to report.
type stage[J any] struct {
	fn   func(J) error
	done chan stageResult[J]
	wake chan struct{} // capacity 1
	quit chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	q    []J // q[head:] wait; the slice is reused once drained
	head int
}

// stageDoneBuffer is how many finished jobs a stage may report ahead of
// the loop: with an unbuffered done, a stage that finished while the loop
// was busy parked in its send and had to be woken again by the loop's
// receive, one more hand-off per job.
const stageDoneBuffer = 16

type stageResult[J any] struct {
	job J
	err error
}

func newStage[J any](fn func(J) error) *stage[J] {
	s := &stage[J]{fn: fn, done: make(chan stageResult[J], stageDoneBuffer), wake: make(chan struct{}, 1), quit: make(chan struct{})}
	s.wg.Add(1)
	return s
}

func (s *stage[J]) push(jobs ...J) {
	s.mu.Lock()
	s.q = append(s.q, jobs...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run runs jobs until stop; after a failed job it runs no more.
func (s *stage[J]) run() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if s.head == len(s.q) {
			s.q, s.head = s.q[:0], 0
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-s.quit:
				return
			}
		}
		j := s.q[s.head]
		var zero J
		s.q[s.head] = zero
		s.head++
		s.mu.Unlock()
		err := s.fn(j)
		select {
		case s.done <- stageResult[J]{job: j, err: err}:
		case <-s.quit:
			return
		}
		if err != nil {
			<-s.quit
			return
		}
	}
}

// stop makes the stage return once its current job (if any) is done, and
// waits for it: the jobs still queued are dropped.
func (s *stage[J]) stop() {
	close(s.quit)
	s.wg.Wait()
}
