package node

import "sync"

// stage runs jobs of one kind on a goroutine of its own, in the order they
// were pushed. It takes every job waiting at once as a batch: it runs fn on
// each, then finish on the batch, and reports the batch on done in one
// send, so the loop wakes once per batch rather than once per job (the
// apply stage holds up to MaxApplyJobs; the log stage, whose driver keeps
// one Ready's job in flight, at most that job and purges, which then share
// its sync). push never blocks, so the loop that pushes never waits for
// the stage; the stage waits for the loop only to report.
type stage[J any] struct {
	fn     func(J) error
	finish func([]J) error // nil: nothing to do after a batch
	done   chan stageResult[J]
	wake   chan struct{} // capacity 1
	quit   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	q      []J // the jobs waiting
}

// stageDoneBuffer is how many finished batches a stage may report ahead of
// the loop: with an unbuffered done, a stage that finished while the loop
// was busy parked in its send and had to be woken again by the loop's
// receive, one more hand-off per batch.
const stageDoneBuffer = 16

// maxStageBatch bounds the jobs of one batch, so that the first of a long
// queue is not reported only after all the others ran.
const maxStageBatch = 256

// stageResult is a finished batch: every job of jobs ran and finish ran
// over them, or err says which step failed (the stage then runs no more,
// and jobs are not all done).
type stageResult[J any] struct {
	jobs []J
	err  error
}

func newStage[J any](fn func(J) error, finish func([]J) error) *stage[J] {
	s := &stage[J]{fn: fn, finish: finish, done: make(chan stageResult[J], stageDoneBuffer), wake: make(chan struct{}, 1), quit: make(chan struct{})}
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

// take removes and returns the next batch, nil if no job waits.
func (s *stage[J]) take() []J {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.q) == 0 {
		return nil
	}
	n := min(len(s.q), maxStageBatch)
	// A batch goes to the loop on done, so it needs slices of its own;
	// the queue's array is kept for the next pushes.
	batch := make([]J, n)
	copy(batch, s.q)
	rest := copy(s.q, s.q[n:])
	clear(s.q[rest:])
	s.q = s.q[:rest]
	return batch
}

// run runs batches until stop; after a failed one it runs no more.
func (s *stage[J]) run() {
	defer s.wg.Done()
	for {
		batch := s.take()
		if batch == nil {
			select {
			case <-s.wake:
				continue
			case <-s.quit:
				return
			}
		}
		err := s.runBatch(batch)
		select {
		case s.done <- stageResult[J]{jobs: batch, err: err}:
		case <-s.quit:
			return
		}
		if err != nil {
			<-s.quit
			return
		}
	}
}

func (s *stage[J]) runBatch(batch []J) error {
	for _, j := range batch {
		if err := s.fn(j); err != nil {
			return err
		}
	}
	if s.finish != nil {
		return s.finish(batch)
	}
	return nil
}

// stop makes the stage return once its current batch (if any) is done, and
// waits for it: the jobs still queued are dropped.
func (s *stage[J]) stop() {
	close(s.quit)
	s.wg.Wait()
}
