package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
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
	for _, tool := range []string{"nsenter", "iptables", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (apt-get install iptables iproute2 util-linux): the nemesis needs it", tool)
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
	joinVia   string // a joining node: the member's client address it asks
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
	spare   []int    // published ports for nodes added later
}

// members are the nodes that were not removed from the cluster.
func (c *cluster) members() []*node {
	var out []*node
	for _, nd := range c.nodes {
		if !nd.removed {
			out = append(out, nd)
		}
	}
	return out
}

// freePorts returns n ports of [portLow, portHigh] that nothing listens
// on now, starting from a point that depends on salt.
func freePorts(n int, salt uint64) ([]int, error) {
	span := portHigh - portLow + 1
	start := int(salt % uint64(span))
	var out []int
	for i := 0; i < span && len(out) < n; i++ {
		p := portLow + (start+i)%span
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
	c := &cluster{t: t, name: name, network: name, env: env, uuid: newUUID()}
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
	const spare = 3
	ports, err := freePorts(n+spare, salt)
	if err != nil {
		t.Fatal(err)
	}
	c.spare = ports[n:]
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

// create creates nd's container (not started).
func (c *cluster) create(nd *node) error {
	args := append([]string{"create", "--name", nd.name, "--hostname", nd.name, "--network", c.network, "--ip", nd.ip,
		"--label", "seshat-chaos=1", "-p", fmt.Sprintf("127.0.0.1:%d:6379", nd.port)}, c.runArgs(nd)...)
	if _, err := sh("docker", args...); err != nil {
		return fmt.Errorf("create %s: %v", nd.name, err)
	}
	return nil
}

// addJoiner creates and starts a new node that joins through via with
// seshatd --join (its addresses are its fixed IP, which it advertises).
func (c *cluster) addJoiner(via *node) (*node, error) {
	if len(c.spare) == 0 {
		return nil, fmt.Errorf("no spare port for another node")
	}
	nd := c.newNode(c.spare[0])
	c.spare = c.spare[1:]
	nd.joinVia = via.name + ":6379"
	c.nodes = append(c.nodes, nd)
	if err := c.create(nd); err != nil {
		return nil, err
	}
	c.start(nd)
	return nd, nil
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

// remove deletes the containers (with their volumes) and the network.
func (c *cluster) remove() {
	for _, nd := range c.nodes {
		if _, err := sh("docker", "rm", "-f", "-v", nd.name); err != nil && !strings.Contains(err.Error(), "No such container") {
			c.t.Logf("remove %s: %v", nd.name, err)
		}
	}
	if _, err := sh("docker", "network", "rm", c.network); err != nil && !strings.Contains(err.Error(), "not found") {
		c.t.Logf("remove network %s: %v", c.network, err)
	}
}

func (c *cluster) startAll() {
	for _, nd := range c.nodes {
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
	nd.killed = true
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

// logs writes every node's docker logs under dir.
func (c *cluster) logs(dir string) {
	for _, nd := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		out, _ := exec.CommandContext(ctx, "docker", "logs", "--timestamps", nd.name).CombinedOutput()
		cancel()
		_ = os.WriteFile(fmt.Sprintf("%s/%s.log", dir, nd.name), out, 0o644)
	}
}
