package node

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestStageBatchesWhatQueued: the jobs pushed while a batch runs form the
// next batch, in order, with one finish for all of them (the log stage's
// group commit); a failure is reported and ends the stage.
func TestStageBatchesWhatQueued(t *testing.T) {
	gate, started := make(chan struct{}), make(chan struct{})
	var ran []int
	var finished [][]int
	failAt := 5
	s := newStage(func(j int) error {
		if j == 1 {
			close(started)
			<-gate // hold the first batch until the others queued
		}
		if j == failAt {
			return errors.New("disk gone")
		}
		ran = append(ran, j)
		return nil
	}, func(jobs []int) error {
		finished = append(finished, append([]int(nil), jobs...))
		return nil
	})
	go s.run()
	defer s.stop()

	s.push(1)
	<-started
	s.push(2, 3)
	s.push(4)
	close(gate)
	var got [][]int
	for range 2 {
		r := <-s.done
		if r.err != nil {
			t.Fatalf("batch %v: %v", r.jobs, r.err)
		}
		got = append(got, r.jobs)
	}
	if diff := cmp.Diff([]int{1, 2, 3, 4}, ran); diff != "" {
		t.Errorf("jobs ran (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(got, finished); diff != "" {
		t.Errorf("finish calls differ from the batches reported (-batches +finish):\n%s", diff)
	}
	if diff := cmp.Diff([][]int{{1}, {2, 3, 4}}, got); diff != "" {
		t.Errorf("batches (-want +got): the jobs pushed during the first must run as the second\n%s", diff)
	}

	s.push(failAt, 6)
	r := <-s.done
	if r.err == nil {
		t.Fatalf("batch %v after a failing job: no error", r.jobs)
	}
	if len(ran) != 4 {
		t.Errorf("jobs ran after the failure: %v", ran[4:])
	}
}
