package resp

import (
	"regexp"
	"strings"
	"testing"
)

func TestInfoRedisFields(t *testing.T) {
	kv := newFakeKV()
	s := dial(t, serve(t, kv, Options{}))
	server := s.do("INFO", "server")
	runID := regexp.MustCompile(`\r\nrun_id:([0-9a-f]{40})\r\n`).FindStringSubmatch(server)
	if runID == nil {
		t.Fatalf("INFO server has no 40-hex-digit run_id: %q", server)
	}
	if again := s.do("INFO", "server"); !strings.Contains(again, "run_id:"+runID[1]) {
		t.Errorf("run_id changed within one run: %q then %q", runID[1], again)
	}
	// The fake KV is a follower of node 1 in term 3, commit 10, applied 9.
	repl := s.do("INFO", "replication")
	for _, want := range []string{"\r\nmaster_repl_offset:10\r\n", "\r\nslave_repl_offset:9\r\n", "\r\nmaster_link_status:up\r\n"} {
		if !strings.Contains(repl, want) {
			t.Errorf("INFO replication lacks %q: %q", want, repl)
		}
	}
	every := s.do("INFO", "everything")
	for _, sec := range []string{"# Server", "# Replication", "# Errorstats", "# Commandstats", "# Keyspace"} {
		if !strings.Contains(every, sec+"\r\n") {
			t.Errorf("INFO everything lacks %q", sec)
		}
	}
}
