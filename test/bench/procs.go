package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/test/spawn"
)

// proc is a child process (a seshatd node or redis-server) with its output
// in a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // its exit status, once done is closed
}

// start runs argv with stdout and stderr in logPath. The child gets its own
// process group (a terminal's Ctrl-C reaches only this program, which then
// stops the children itself) and is killed if this program dies.
func start(name, logPath string, argv ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs and waits.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// procs are the children to stop at the end, also on failure or a signal.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

func (ps *procs) add(p *proc) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.list = append(ps.list, p)
}

// stopAll stops every child at once, each with grace to exit cleanly.
func (ps *procs) stopAll(grace time.Duration) {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Go(func() { p.stop(grace) })
	}
	wg.Wait()
}

// firstExited returns a child that has exited, if any.
func (ps *procs) firstExited() *proc {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.list {
		if p.exited() {
			return p
		}
	}
	return nil
}

// cluster is a running 3-node seshatd cluster.
type cluster struct {
	nodes   []*proc
	clients []string // client (RESP) address of node i+1
}

// startCluster starts size nodes on free loopback ports, fsync on, data
// under dir.
func startCluster(bin, dir string, size int, all *procs) (*cluster, error) {
	ports, err := spawn.FreePorts(2 * size)
	if err != nil {
		return nil, err
	}
	var peerList, clientList []string
	c := &cluster{}
	for i := range size {
		peerList = append(peerList, fmt.Sprintf("%d=127.0.0.1:%d", i+1, ports[size+i]))
		clientList = append(clientList, fmt.Sprintf("%d=127.0.0.1:%d", i+1, ports[i]))
		c.clients = append(c.clients, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	uuid := datadir.NewUUID()
	for i := range size {
		id := i + 1
		data := filepath.Join(dir, fmt.Sprintf("node%d", id))
		p, err := start(fmt.Sprintf("seshatd node %d", id), filepath.Join(dir, fmt.Sprintf("node%d.log", id)),
			bin, "--id", fmt.Sprint(id), "--data-dir", data,
			"--listen", c.clients[i], "--peer-listen", fmt.Sprintf("127.0.0.1:%d", ports[size+i]),
			"--cluster", strings.Join(peerList, ","), "--clients", strings.Join(clientList, ","),
			"--cluster-id", "bench", "--bootstrap", "--cluster-uuid", uuid, "--log-level", "warn")
		if err != nil {
			return nil, err
		}
		all.add(p)
		c.nodes = append(c.nodes, p)
	}
	return c, nil
}

// leader asks every node for INFO replication and returns the index of the
// node that says it leads (-1 if none does) and the term it reports.
func (c *cluster) leader() (int, string) {
	for i, addr := range c.clients {
		v, err := command(addr, 2*time.Second, "INFO", "replication")
		if err != nil {
			continue
		}
		s, _ := v.(string)
		f := infoFields(s)
		if f["role"] == "leader" || f["role"] == "master" {
			return i, f["term"]
		}
	}
	return -1, ""
}

// waitLeader waits until a node leads and takes a write, and returns it.
func (c *cluster) waitLeader(ctx context.Context, timeout time.Duration, all *procs) (int, error) {
	deadline := time.Now().Add(timeout)
	var last error = errors.New("no node reports role:leader")
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p := all.firstExited(); p != nil {
			return -1, fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail(20))
		}
		if i, _ := c.leader(); i >= 0 {
			if _, err := command(c.clients[i], 5*time.Second, "SET", "bench:probe", "1"); err == nil {
				return i, nil
			} else {
				last = err
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	return -1, fmt.Errorf("no leader within %v: %v", timeout, last)
}

// waitPing waits until addr answers PING.
func waitPing(ctx context.Context, addr string, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ctx.Err()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail(20))
		}
		if _, last = command(addr, time.Second, "PING"); last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%s on %s did not answer PING within %v: %v", p.name, addr, timeout, last)
}
