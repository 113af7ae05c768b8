package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The client password and the peer secret never show: not in the logs at
// debug level (JSON), not in INFO, CONFIG GET or CLIENT LIST/INFO, not in
// the data directory, while clients AUTH (also wrongly), followers relay
// writes with the password, and peers authenticate.
func TestSecretsNeverShow(t *testing.T) {
	const (
		password = "client-password-0f3a9c"
		secret   = "peer-secret-77d2e41b9a6c5f08"
	)
	c := newClusterWith(t, 3, nil, "--requirepass", password, "--peer-secret", secret,
		"--log-level", "debug", "--log-format", "json")
	for id := 1; id <= 3; id++ {
		c.mu.Lock()
		c.rdb[id] = redis.NewClient(&redis.Options{Addr: c.clients[id-1], Password: password, MaxRetries: -1})
		c.mu.Unlock()
	}
	lead := c.leader(10 * time.Second)
	ctx := ctxT(t, 60*time.Second)
	follower := others(3, lead)[0]

	// Traffic that handles the password: AUTH, HELLO AUTH, a wrong AUTH
	// that contains the password, relayed writes.
	basicCases(ctx, t, c.client(follower), "relayed:")
	resp3 := redis.NewClient(&redis.Options{Addr: c.clients[lead-1], Protocol: 3, Password: password, ClientName: "resp3", MaxRetries: -1})
	defer resp3.Close()
	if err := resp3.Set(ctx, "hello3", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	wrong := redis.NewClient(&redis.Options{Addr: c.clients[follower-1], Password: password + "-typo", MaxRetries: -1})
	defer wrong.Close()
	if err := wrong.Ping(ctx).Err(); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	anon := redis.NewClient(&redis.Options{Addr: c.clients[follower-1], MaxRetries: -1})
	defer anon.Close()
	_ = anon.Do(ctx, "AUTH", "default", password+"-typo").Err()

	var shown []string
	for id := 1; id <= 3; id++ {
		r := c.client(id)
		for _, sections := range [][]any{{}, {"all"}, {"everything"}, {"server", "clients", "replication"}} {
			s, err := r.Info(ctx, toStrings(sections)...).Result()
			if err != nil {
				t.Fatalf("node %d INFO %v: %v", id, sections, err)
			}
			shown = append(shown, s)
		}
		for _, cmd := range [][]any{{"CONFIG", "GET", "*"}, {"CONFIG", "GET", "requirepass"}, {"CONFIG", "GET", "*pass*"},
			{"CLIENT", "LIST"}, {"CLIENT", "INFO"}} {
			v, err := r.Do(ctx, cmd...).Result()
			if err != nil {
				t.Fatalf("node %d %v: %v", id, cmd, err)
			}
			shown = append(shown, strings.Join(toStrings(flatten(v)), " "))
		}
	}
	for _, s := range shown {
		for _, sec := range []string{password, secret} {
			if strings.Contains(s, sec) {
				t.Fatalf("a reply shows a secret:\n%s", s)
			}
		}
	}
	if !strings.Contains(strings.Join(shown, ""), "resp3") {
		t.Fatal("CLIENT LIST does not list the connections: the check above saw nothing")
	}

	// Stop every node (the shutdown logs too), then read everything they
	// wrote.
	for id := 1; id <= 3; id++ {
		<-c.signal(id, syscall.SIGTERM).done
		c.forget(id)
	}
	for id := 1; id <= 3; id++ {
		logs, err := os.ReadFile(filepath.Join(c.dir, "node"+strconv.Itoa(id)+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(logs, []byte(`"level":"debug"`)) {
			t.Fatalf("node %d's log is not at debug level:\n%s", id, c.logTail(id))
		}
		checkLogFields(t, id, logs)
		for _, sec := range []string{password, secret} {
			if i := bytes.Index(logs, []byte(sec)); i >= 0 {
				t.Errorf("node %d's log shows a secret: %s", id, logs[max(0, i-200):min(len(logs), i+100)])
			}
		}
	}
	err := filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".log") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, sec := range []string{password, secret} {
			if bytes.Contains(b, []byte(sec)) {
				t.Errorf("%s holds a secret", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func toStrings(v []any) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i], _ = x.(string)
	}
	return out
}

// flatten turns a reply (nested arrays and maps) into its leaves.
func flatten(v any) []any {
	switch x := v.(type) {
	case []any:
		var out []any
		for _, e := range x {
			out = append(out, flatten(e)...)
		}
		return out
	case map[any]any:
		var out []any
		for k, e := range x {
			out = append(append(out, flatten(k)...), flatten(e)...)
		}
		return out
	case map[string]any:
		var out []any
		for k, e := range x {
			out = append(append(out, k), flatten(e)...)
		}
		return out
	}
	return []any{v}
}

// checkLogFields checks that every line of a node's JSON log is an object
// whose keys appear once each, with "node" (the node's id) and
// "component".
func checkLogFields(t *testing.T, id int, logs []byte) {
	t.Helper()
	for i, line := range bytes.Split(bytes.TrimSpace(logs), []byte("\n")) {
		keys, node, err := topLevelKeys(line)
		if err != nil {
			t.Fatalf("node %d, log line %d is not a JSON object (%v): %s", id, i+1, err, line)
		}
		for k, n := range keys {
			if n > 1 {
				t.Errorf("node %d, log line %d holds %q %d times: %s", id, i+1, k, n, line)
			}
		}
		if keys["component"] != 1 || node != float64(id) {
			t.Errorf("node %d, log line %d lacks its node or component: %s", id, i+1, line)
		}
	}
}

// topLevelKeys counts the keys of a JSON object and returns its "node".
func topLevelKeys(line []byte) (map[string]int, any, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("no object (%v)", err)
	}
	keys := map[string]int{}
	var node any
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := tok.(string)
		keys[k]++
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		if k == "node" {
			node = v
		}
	}
	return keys, node, nil
}
