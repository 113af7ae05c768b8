package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFlagsFallBackToEnvironment(t *testing.T) {
	cfg, err := parseFlags([]string{"--id", "2", "--tick", "20ms"}, env(map[string]string{
		"SESHAT_ID":          "9", // the flag wins
		"SESHAT_DATA_DIR":    "/d",
		"SESHAT_CLUSTER":     "1=a:1,2=b:2",
		"SESHAT_CLIENTS":     "1=a:11,2=b:12",
		"SESHAT_REDIRECT":    "true",
		"SESHAT_NO_SYNC":     "1",
		"SESHAT_TICK":        "1s", // the flag wins
		"SESHAT_CLUSTER_ID":  "prod",
		"SESHAT_LOG_FORMAT":  "json",
		"SESHAT_PEER_LISTEN": "",
		"SESHAT_READ_MODE":   "lease",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.id != 2 || cfg.dataDir != "/d" || !cfg.redirect || !cfg.noSync || cfg.tick != 20*time.Millisecond ||
		cfg.clusterID != "prod" || cfg.logFormat != "json" || cfg.peerListen != "b:2" || cfg.readMode != consensus.LeaseMode {
		t.Fatalf("config %+v", cfg)
	}
	if d := cmp.Diff(map[domain.NodeID]string{1: "a:11", 2: "b:12"}, cfg.clients); d != "" {
		t.Fatalf("clients (-want +got):\n%s", d)
	}
}

func TestBadFlags(t *testing.T) {
	base := []string{"--data-dir", "/d", "--cluster", "1=a:1,2=b:2", "--clients", "1=a:11,2=b:12"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append([]string{"--id", "0"}, base...), "--id is required"},
		{append([]string{"--id", "3"}, base...), "does not name this node's id 3"},
		{[]string{"--id", "1", "--data-dir", "/d", "--cluster", "1=a:1,1=b:2", "--clients", "1=a:11"}, "node id 1 appears twice"},
		{[]string{"--id", "1", "--data-dir", "/d", "--cluster", "1=a:1,2=a:1", "--clients", "1=a:11,2=b:12"}, "share the address"},
		{[]string{"--id", "1", "--data-dir", "/d", "--cluster", "1=a:1,2=b:2", "--clients", "1=a:11"}, "no address for node 2"},
		{[]string{"--id", "1", "--data-dir", "/d", "--cluster", "1=nohostport"}, "missing port"},
		{append([]string{"--id", "1", "--election-ticks", "2", "--heartbeat-ticks", "2"}, base...), "heartbeat-ticks"},
		{append([]string{"--id", "1", "--log-format", "xml"}, base...), "--log-format"},
		{[]string{"--id", "1", "--cluster", "1=a:1"}, "--data-dir is required"},
		{append([]string{"--id", "1", "--read-mode", "stale"}, base...), "--read-mode"},
		{append([]string{"--id", "1", "--read-mode", "lease", "--lease-drift-ticks", "50"}, base...), "--lease-drift-ticks"},
	} {
		_, err := parseFlags(c.args, env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.args, err, c.want)
		}
	}
	// A single node needs no --clients.
	if _, err := parseFlags([]string{"--id", "1", "--data-dir", "/d", "--cluster", "1=a:1"}, env(nil)); err != nil {
		t.Errorf("single node: %v", err)
	}
}
