package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Image is the image the chaos test runs (make chaos builds it with
// cmd/seshatd/image.sh); SESHAT_CHAOS_IMAGE overrides it.
func Image() string {
	if img := os.Getenv("SESHAT_CHAOS_IMAGE"); img != "" {
		return img
	}
	return "seshat:chaos"
}

// Published client ports are taken from this range (loopback only).
const (
	portLow  = 25000
	portHigh = 25999
)

// cmdTimeout bounds every docker, nsenter, iptables and tc command.
const cmdTimeout = 60 * time.Second

// sh runs a host command, bounded, and returns its combined output.
func sh(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// requireDocker skips the test where Docker is absent, and fails it where
// Docker is there but a host tool the nemesis needs is not.
func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker is not installed: the chaos test needs Docker")
	}
	if out, err := sh("docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Skipf("the Docker daemon does not answer: %v %s", err, out)
	}
	for _, tool := range []string{"nsenter", "iptables", "tc", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (apt-get install iptables iproute2 util-linux mount): the nemesis needs it", tool)
		}
	}
	if _, err := sh("docker", "image", "inspect", Image()); err != nil {
		t.Fatalf("image %s is missing: make chaos builds it (cmd/seshatd/image.sh %s)", Image(), Image())
	}
}

// node is one seshatd container.
type node struct {
	id        int    // Raft id, 1-based
	name      string // container name and host name on the network
	ip        string // fixed address on the test's network
	port      int    // client port published on 127.0.0.1
	killed    bool
	paused    bool
	everStart bool
	removed   bool   // no longer a member (SESHAT.MEMBER REMOVE or REPLACE)
	gone      bool   // its container and data dir were deleted (retire)
	created   bool   // its container exists
	joinVia   string // a joining node: the member's client address it asks
	mount     string // the host's tmpfs holding its data dir (mount/data is /data)
}

func (n *node) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// cluster is a set of containers on a network of the test's own.
type cluster struct {
	t       *testing.T
	name    string // prefix of every docker object: chaos-...
	network string
	subnet  string
	nodes   []*node
	env     []string // extra SESHAT_* variables for every node (planted bugs)
	uuid    string   // the cluster's UUID (--cluster-uuid)
	salt    uint64   // picks ports and the subnet
	mounts  string   // the host directory under which each node's tmpfs is mounted
	// evidence is the run's evidence directory: a node retired during
	// the run leaves its log there before its container goes.
	evidence string
	w        *workloads // told when a node leaves or joins (nil: none run)
	change   *change    // what the step being run has left to do (membershipStep, diskFull)
}

// members are the nodes that were not removed from the cluster and
// whose container exists.
func (c *cluster) members() []*node {
	var out []*node
	for _, nd := range c.nodes {
		if !nd.removed && nd.created {
			out = append(out, nd)
		}
	}
	return out
}

// freePorts returns n ports of [portLow, portHigh] that nothing listens
// on now and that are not in taken, starting from a point that depends
// on salt.
func freePorts(n int, salt uint64, taken map[int]bool) ([]int, error) {
	span := portHigh - portLow + 1
	start := int(salt % uint64(span))
	var out []int
	for i := 0; i < span && len(out) < n; i++ {
		p := portLow + (start+i)%span
		if taken[p] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("only %d free ports in %d-%d", len(out), portLow, portHigh)
	}
	return out, nil
}

// newCluster creates the network and n containers (not started), and
// registers their removal.
func newCluster(t *testing.T, name string, n int, salt uint64, env []string) *cluster {
	t.Helper()
	c := &cluster{t: t, name: name, network: name, env: env, uuid: newUUID(), salt: salt,
		mounts: filepath.Join(os.TempDir(), "seshat-chaos-mnt", name)}
	t.Cleanup(c.remove)
	// A fixed subnet, so that a restarted container keeps its address
	// (the iptables rules name addresses). Tried until one is free.
	var err error
	for i := range 40 {
		c.subnet = fmt.Sprintf("10.%d.%d.0/24", 200+int(salt%40), (int(salt/40)+i*7)%250)
		if _, err = sh("docker", "network", "create", "--subnet", c.subnet, "--label", "seshat-chaos=1", c.network); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("create network: %v", err)
	}
	ports, err := freePorts(n, salt, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c.nodes = append(c.nodes, c.newNode(ports[i]))
	}
	for _, nd := range c.nodes {
		if err := c.create(nd); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// newNode describes the next node (not yet created).
func (c *cluster) newNode(port int) *node {
	id := len(c.nodes) + 1
	base := strings.TrimSuffix(c.subnet, "0/24")
	return &node{id: id, name: fmt.Sprintf("%s-n%d", c.name, id), ip: base + strconv.Itoa(9+id), port: port}
}

// reserveNode adds the next node, with a free port, to the cluster's
// list without creating it: its id and addresses are known (REPLACE
// needs them) before it joins.
func (c *cluster) reserveNode() (*node, error) {
	if len(c.nodes) >= 240 {
		return nil, fmt.Errorf("no address left on %s for another node", c.subnet)
	}
	// A node reserved but not created yet does not listen: skip its port.
	taken := map[int]bool{}
	for _, nd := range c.nodes {
		if !nd.gone {
			taken[nd.port] = true
		}
	}
	ports, err := freePorts(1, c.salt+uint64(len(c.nodes))*37, taken)
	if err != nil {
		return nil, err
	}
	nd := c.newNode(ports[0])
	c.nodes = append(c.nodes, nd)
	return nd, nil
}

// tmpfsSize bounds each node's data dir: far more than a run writes, and
// small enough that the disk-full nemesis fills it in a moment.
const tmpfsSize = "1g"

// create creates nd's container (not started), its data dir on a tmpfs
// of its own mounted on the host (a size-limited filesystem the host can
// fill: see fill), bind-mounted on /data. A host mount outlives the
// container's restarts, unlike docker run --tmpfs, which is emptied at
// every start.
func (c *cluster) create(nd *node) error {
	nd.mount = filepath.Join(c.mounts, nd.name)
	if err := os.MkdirAll(nd.mount, 0o755); err != nil {
		return err
	}
	if _, err := sh("mount", "-t", "tmpfs", "-o", "size="+tmpfsSize+",mode=0755", "tmpfs", nd.mount); err != nil {
		return fmt.Errorf("data dir of %s: %w", nd.name, err)
	}
	data := filepath.Join(nd.mount, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return err
	}
	if err := os.Chown(data, 10001, 10001); err != nil { // the image's user
		return err
	}
	args := append([]string{"create", "--name", nd.name, "--hostname", nd.name, "--network", c.network, "--ip", nd.ip,
		"--label", "seshat-chaos=1", "-p", fmt.Sprintf("127.0.0.1:%d:6379", nd.port), "-v", data + ":/data"}, c.runArgs(nd)...)
	if _, err := sh("docker", args...); err != nil {
		return fmt.Errorf("create %s: %v", nd.name, err)
	}
	nd.created = true
	return nil
}

// join creates and starts nd, a reserved node, which joins through via
// with seshatd --join (its addresses are its fixed IP, which it
// advertises).
func (c *cluster) join(nd, via *node) error {
	nd.joinVia = via.name + ":6379"
	if err := c.create(nd); err != nil {
		return err
	}
	c.start(nd)
	return nil
}

// addJoiner reserves, creates and starts a new node that joins through
// via.
func (c *cluster) addJoiner(via *node) (*node, error) {
	nd, err := c.reserveNode()
	if err != nil {
		return nil, err
	}
	return nd, c.join(nd, via)
}

// retire deletes a removed node: its log goes to the evidence directory,
// then its container and its data dir.
func (c *cluster) retire(nd *node) {
	if nd.gone || !nd.created {
		nd.gone = true
		return
	}
	if nd.paused {
		c.unpause(nd)
	}
	if c.evidence != "" {
		c.saveLog(nd, c.evidence)
	}
	if _, err := sh("docker", "rm", "-f", "-v", nd.name); err != nil {
		c.t.Logf("remove %s: %v", nd.name, err)
	}
	c.unmount(nd)
	nd.gone, nd.killed = true, true
}

// unmount removes nd's tmpfs and its mount point.
func (c *cluster) unmount(nd *node) {
	if nd.mount == "" {
		return
	}
	if _, err := sh("umount", nd.mount); err != nil && !strings.Contains(err.Error(), "not mounted") {
		c.t.Logf("umount %s: %v", nd.mount, err)
	}
	_ = os.Remove(nd.mount)
	nd.mount = ""
}

// fillerPath is the file that fills nd's tmpfs: beside /data, on the same
// filesystem, so seshatd never sees it.
func fillerPath(nd *node) string { return filepath.Join(nd.mount, "chaos-filler") }

// fill leaves leave bytes free on nd's data filesystem (less than
// seshatd's reserve of 64 MiB, pebble.DefaultMinFreeBytes), by
// allocating the rest to a file on the host. It returns the free bytes
// before.
func (c *cluster) fill(nd *node, leave int64) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(nd.mount, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", nd.mount, err)
	}
	free := int64(st.Bavail) * st.Bsize
	if free <= leave {
		return free, nil
	}
	f, err := os.OpenFile(fillerPath(nd), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return free, err
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, free-leave); err != nil {
		return free, fmt.Errorf("fallocate %d bytes on %s: %w", free-leave, nd.mount, err)
	}
	return free, nil
}

// unfill removes nd's filler, if any.
func (c *cluster) unfill(nd *node) {
	if nd.mount != "" {
		_ = os.Remove(fillerPath(nd))
	}
}

// runArgs is the one place that says how a node's container starts: its
// environment (every SESHAT_* variable is a seshatd flag), then the image
// and seshatd's arguments. Every node is created with --bootstrap and the
// cluster's UUID: seshatd ignores --bootstrap once its data dir holds the
// identity, so a restarted container (same arguments) joins its cluster
// again.
func (c *cluster) runArgs(nd *node) []string {
	if nd.joinVia != "" {
		var out []string
		for _, e := range append([]string{
			"SESHAT_ID=" + strconv.Itoa(nd.id),
			"SESHAT_LISTEN=" + nd.ip + ":6379",
			"SESHAT_PEER_LISTEN=" + nd.ip + ":16379",
			"SESHAT_LOG_LEVEL=info",
		}, c.env...) {
			out = append(out, "-e", e)
		}
		return append(out, Image(), "--join", nd.joinVia)
	}
	var peers, clients []string
	for _, o := range c.nodes {
		peers = append(peers, fmt.Sprintf("%d=%s:16379", o.id, o.name))
		clients = append(clients, fmt.Sprintf("%d=%s:6379", o.id, o.name))
	}
	env := []string{
		"SESHAT_ID=" + strconv.Itoa(nd.id),
		"SESHAT_CLUSTER=" + strings.Join(peers, ","),
		"SESHAT_CLIENTS=" + strings.Join(clients, ","),
		"SESHAT_LOG_LEVEL=info",
	}
	env = append(env, c.env...)
	var out []string
	for _, e := range env {
		out = append(out, "-e", e)
	}
	return append(out, Image(), "--bootstrap", "--cluster-uuid", c.uuid)
}

// newUUID returns a random (version 4) UUID in RFC 4122 text form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// remove deletes the containers (with their volumes), their data dirs
// and the network.
func (c *cluster) remove() {
	for _, nd := range c.nodes {
		if !nd.created || nd.gone {
			continue
		}
		if _, err := sh("docker", "rm", "-f", "-v", nd.name); err != nil && !strings.Contains(err.Error(), "No such container") {
			c.t.Logf("remove %s: %v", nd.name, err)
		}
		c.unmount(nd)
	}
	_ = os.Remove(c.mounts)
	_ = os.Remove(filepath.Dir(c.mounts)) // if no other run uses it

	if _, err := sh("docker", "network", "rm", c.network); err != nil && !strings.Contains(err.Error(), "not found") {
		c.t.Logf("remove network %s: %v", c.network, err)
	}
}

func (c *cluster) startAll() {
	for _, nd := range c.members() {
		c.start(nd)
	}
}

func (c *cluster) start(nd *node) {
	if _, err := sh("docker", "start", nd.name); err != nil {
		c.t.Errorf("start %s: %v", nd.name, err)
		return
	}
	nd.killed, nd.everStart = false, true
}

func (c *cluster) kill(nd *node) {
	if _, err := sh("docker", "kill", "-s", "KILL", nd.name); err != nil {
		c.t.Logf("kill %s: %v", nd.name, err)
	}
	// docker kill returns once the signal is sent: wait for the exit.
	_, _ = sh("docker", "wait", nd.name)
	// A paused container can be killed (a membership step may kill the
	// node its co-fault paused): it is then no longer paused, and must
	// not be unpaused at the heal or when it is retired.
	nd.killed, nd.paused = true, false
}

func (c *cluster) pause(nd *node) {
	if _, err := sh("docker", "pause", nd.name); err != nil {
		c.t.Errorf("pause %s: %v", nd.name, err)
		return
	}
	nd.paused = true
}

func (c *cluster) unpause(nd *node) {
	if _, err := sh("docker", "unpause", nd.name); err != nil {
		c.t.Errorf("unpause %s: %v", nd.name, err)
		return
	}
	nd.paused = false
}

// pid is the container's init process, whose network namespace nsenter
// enters; 0 if it does not run.
func (c *cluster) pid(nd *node) int {
	out, err := sh("docker", "inspect", "-f", "{{.State.Pid}}", nd.name)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(out))
	return p
}

// inNetns runs a command in nd's network namespace.
func (c *cluster) inNetns(nd *node, name string, args ...string) error {
	pid := c.pid(nd)
	if pid == 0 {
		return fmt.Errorf("%s is not running", nd.name)
	}
	_, err := sh("nsenter", append([]string{"-t", strconv.Itoa(pid), "-n", name}, args...)...)
	return err
}

// logs writes every node's docker logs under dir (a retired node's log
// is there already).
func (c *cluster) logs(dir string) {
	for _, nd := range c.nodes {
		if nd.created && !nd.gone {
			c.saveLog(nd, dir)
		}
	}
}

func (c *cluster) saveLog(nd *node, dir string) {
	_ = os.WriteFile(fmt.Sprintf("%s/%s.log", dir, nd.name), []byte(c.logText(nd)), 0o644)
}

// logText is nd's docker log so far.
func (c *cluster) logText(nd *node) string {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "docker", "logs", "--timestamps", nd.name).CombinedOutput()
	return string(out)
}
