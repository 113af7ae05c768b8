// Package spawn is what the tests that run real seshatd processes share
// (test/e2e, test/compat, test/bench): free loopback ports and a build of
// the daemon.
package spawn

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
)

// FreePorts returns n distinct free ports on 127.0.0.1, held open together
// while chosen so that none is returned twice. Another process may take
// one before the caller listens on it; the tests that use them are short
// enough that this does not happen in practice.
func FreePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// FreeAddrs is FreePorts as "127.0.0.1:port" addresses.
func FreeAddrs(n int) ([]string, error) {
	ports, err := FreePorts(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i, p := range ports {
		out[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return out, nil
}

// BuildSeshatd builds cmd/seshatd into dir with goTool ("go" if empty) and
// returns the binary's path: static (CGO_ENABLED=0) as `make build` and the
// container image, or with the race detector (which needs cgo) if race.
func BuildSeshatd(goTool, dir string, race bool) (string, error) {
	if goTool == "" {
		goTool = "go"
	}
	bin := filepath.Join(dir, "seshatd")
	args := []string{"build", "-o", bin}
	cgo := "CGO_ENABLED=0"
	if race {
		args, cgo = append(args, "-race"), "CGO_ENABLED=1"
	}
	cmd := exec.Command(goTool, append(args, "github.com/seshat-kv/seshat/cmd/seshatd")...)
	cmd.Env = append(os.Environ(), cgo)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/seshatd: %v\n%s", err, out)
	}
	return bin, nil
}
