// Package node runs a Raft core. It has two parts:
//
//   - Driver, deterministic: it owns a consensus.Raft and decides
//     everything around it (proposals waiting for their entries, read
//     batches, leadership transfers, the disk-full policy, compaction),
//     takes inputs (ticks, messages, requests, completions of storage
//     work) and returns its Output (messages to send, LogJobs and
//     ApplyJobs to run, snapshots to send, answers to deliver). It has no
//     goroutine, clock, channel or I/O, so the simulator (test/sim) runs
//     it exactly as production does.
//   - Node, the shell: a loop goroutine that feeds the driver from a
//     ticker, a ports.Transport and its callers, a log stage and an apply
//     stage that run the driver's storage work against the storage ports
//     while the loop goes on, and a goroutine per snapshot send.
package node
