package resp

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

// configParams are the parameters CONFIG GET knows, with their values.
// requirepass is not among them, unlike in Redis: a secret is never
// shown, to a client that passed AUTH or not.
func (s *Server) configParams() [][2]string {
	port := "0"
	if s.ln != nil {
		if _, p, err := splitPort(s.ln.Addr().String()); err == nil {
			port = p
		}
	}
	return [][2]string{
		{"maxmemory", "0"},
		{"databases", strconv.Itoa(s.opts.Databases)},
		{"proto-max-bulk-len", strconv.Itoa(s.opts.MaxValueBytes)},
		{"save", ""},
		{"appendonly", "no"},
		{"appendfsync", "always"},
		{"port", port},
		{"cluster-enabled", map[bool]string{true: "yes", false: "no"}[s.opts.Redirect]},
	}
}

func (s *Server) config(args [][]byte) item {
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "get":
		if len(args) < 3 {
			return wrongArgs("config|get")
		}
		var out []domain.Reply
		for _, kv := range s.configParams() {
			for _, p := range args[2:] {
				if keyspace.Match(p, []byte(kv[0]), true) {
					out = append(out, domain.StringReply(kv[0]), domain.StringReply(kv[1]))
					break
				}
			}
		}
		return valueItem(mapReply(out...))
	case "set":
		if len(args) < 4 || len(args)%2 != 0 {
			return wrongArgs("config|set")
		}
		known := map[string]bool{}
		for _, kv := range s.configParams() {
			known[kv[0]] = true
		}
		for i := 2; i < len(args); i += 2 {
			name := strings.ToLower(string(args[i]))
			if !known[name] {
				return errorItem(oneLine(fmt.Sprintf("ERR Unknown option or number of arguments for CONFIG SET - '%s'", args[i])))
			}
		}
		return errorItem(oneLine(fmt.Sprintf("ERR CONFIG SET failed (possibly related to argument '%s') - can't set immutable config", strings.ToLower(string(args[2])))))
	case "resetstat":
		if len(args) != 2 {
			return wrongArgs("config|resetstat")
		}
		s.totalCmds.Store(0)
		s.totalConns.Store(0)
		for _, c := range s.cmdStats {
			c.calls.Store(0)
			c.lat.reset()
		}
		s.stats.reset()
		return okItem
	case "rewrite":
		return errorItem("ERR The server is running without a config file")
	case "help":
		return helpItem([]string{
			"CONFIG <subcommand> [<arg> ...], where <subcommand> is one of:",
			"GET <pattern> [<pattern> ...]",
			"    The settings whose names match a pattern, with their values.",
			"SET <name> <value>",
			"    Refused: Seshat's settings are flags of seshatd, fixed at start.",
			"RESETSTAT",
			"    Zero the counters INFO reports.",
			"HELP",
			"    This text.",
		})
	}
	return unknownSubcommand(args[1], "CONFIG")
}

// infoSections are INFO's sections in order; default ones are those INFO
// with no argument shows.
var infoSections = []struct {
	name    string
	deflt   bool
	allOnly bool
}{
	{"server", true, false}, {"clients", true, false}, {"memory", true, false},
	{"persistence", true, false}, {"stats", true, false}, {"replication", true, false},
	{"cpu", true, false}, {"modules", true, false}, {"errorstats", true, false},
	{"cluster", true, false}, {"keyspace", true, false}, {"commandstats", false, false},
}

// info renders INFO's sections in Redis's format.
func (s *Server) info(args [][]byte) string {
	want := map[string]bool{}
	if len(args) == 0 {
		args = [][]byte{[]byte("default")}
	}
	for _, a := range args {
		switch name := strings.ToLower(string(a)); name {
		case "all", "everything":
			for _, sec := range infoSections {
				want[sec.name] = true
			}
		case "default":
			for _, sec := range infoSections {
				if sec.deflt {
					want[sec.name] = true
				}
			}
		default:
			want[name] = true
		}
	}
	var b strings.Builder
	section := func(name string, fields [][2]string) {
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
		for _, f := range fields {
			b.WriteString(f[0] + ":" + f[1] + "\r\n")
		}
	}
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	port := "0"
	if s.ln != nil {
		if _, p, err := splitPort(s.ln.Addr().String()); err == nil {
			port = p
		}
	}
	up := time.Since(s.start)
	if want["server"] {
		section("Server", [][2]string{
			{"redis_version", RedisVersion},
			{"seshat_version", s.opts.Version},
			{"redis_mode", s.mode()},
			{"os", runtime.GOOS + " " + runtime.GOARCH},
			{"arch_bits", strconv.Itoa(strconv.IntSize)},
			{"multiplexing_api", "epoll"},
			{"go_version", runtime.Version()},
			{"process_id", strconv.Itoa(os.Getpid())},
			{"run_id", runID(s.start)},
			{"tcp_port", port},
			{"server_time_usec", itoa(time.Now().UnixMicro())},
			{"uptime_in_seconds", itoa(int64(up / time.Second))},
			{"uptime_in_days", itoa(int64(up / (24 * time.Hour)))},
			{"executable", executable()},
			{"config_file", ""},
		})
	}
	if want["clients"] {
		section("Clients", [][2]string{
			{"connected_clients", itoa(s.clients.Load())},
			{"cluster_connections", "0"},
			{"maxclients", "10000"},
			{"client_recent_max_input_buffer", "0"},
			{"client_recent_max_output_buffer", "0"},
			{"blocked_clients", itoa(s.blockedCount.Load())},
			{"tracking_clients", "0"},
			{"clients_in_timeout_table", "0"},
		})
	}
	if want["memory"] {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		section("Memory", [][2]string{
			{"used_memory", u64(m.HeapAlloc)},
			{"used_memory_human", human(m.HeapAlloc)},
			{"used_memory_rss", u64(m.Sys)},
			{"used_memory_rss_human", human(m.Sys)},
			{"used_memory_peak", u64(m.HeapSys)},
			{"used_memory_peak_human", human(m.HeapSys)},
			{"total_system_memory", "0"},
			{"maxmemory", "0"},
			{"maxmemory_human", "0B"},
			{"maxmemory_policy", "noeviction"},
			{"mem_allocator", "go"},
		})
	}
	if want["persistence"] {
		section("Persistence", [][2]string{
			{"loading", "0"},
			{"async_loading", "0"},
			{"rdb_changes_since_last_save", "0"},
			{"rdb_bgsave_in_progress", "0"},
			{"rdb_last_bgsave_status", "ok"},
			{"aof_enabled", "0"},
			{"aof_rewrite_in_progress", "0"},
			{"aof_last_write_status", "ok"},
		})
	}
	if want["stats"] {
		section("Stats", [][2]string{
			{"total_connections_received", itoa(s.totalConns.Load())},
			{"total_commands_processed", itoa(s.totalCmds.Load())},
			{"instantaneous_ops_per_sec", "0"},
			{"total_net_input_bytes", "0"},
			{"total_net_output_bytes", "0"},
			{"rejected_connections", "0"},
			{"expired_keys", "0"},
			{"evicted_keys", "0"},
			{"keyspace_hits", "0"},
			{"keyspace_misses", "0"},
			{"pubsub_channels", "0"},
			{"pubsub_patterns", "0"},
		})
	}
	if want["replication"] {
		st := s.kv.Status()
		fields := replicationFields(st)
		fields = append(fields,
			[2]string{"raft_role", st.Role},
			[2]string{"node_id", u64(uint64(st.ID))},
			[2]string{"leader", u64(uint64(st.Leader))},
			[2]string{"leader_addr", st.LeaderAddr},
			[2]string{"term", u64(uint64(st.Term))},
			[2]string{"commit_index", u64(uint64(st.Commit))},
			[2]string{"applied_index", u64(uint64(st.Applied))},
			[2]string{"last_index", u64(uint64(st.LastIndex))},
			[2]string{"voters", ids(st.Membership.Voters)},
			[2]string{"learners", ids(st.Membership.Learners)},
		)
		if len(st.LostData) > 0 { // on a leader: followers that lost their data, to replace
			fields = append(fields, [2]string{"lost_data", ids(st.LostData)})
		}
		fields = append(fields, s.memberFields()...)
		section("Replication", fields)
	}
	if want["cpu"] {
		section("CPU", [][2]string{
			{"used_cpu_sys", "0.000000"}, {"used_cpu_user", "0.000000"},
			{"used_cpu_sys_children", "0.000000"}, {"used_cpu_user_children", "0.000000"},
		})
	}
	if want["modules"] {
		section("Modules", nil)
	}
	if want["errorstats"] {
		var fields [][2]string
		for i, k := range errorKinds {
			if n := s.stats.errors[i].Load(); n > 0 {
				fields = append(fields, [2]string{"errorstat_" + k, "count=" + u64(n)})
			}
		}
		section("Errorstats", fields)
	}
	if want["cluster"] {
		enabled := "0"
		if s.opts.Redirect {
			enabled = "1"
		}
		section("Cluster", [][2]string{{"cluster_enabled", enabled}})
	}
	if want["keyspace"] {
		var fields [][2]string
		if sizes, err := s.kv.Keyspace(s.opts.Databases); err == nil {
			for db, n := range sizes {
				if n.Keys > 0 {
					fields = append(fields, [2]string{"db" + strconv.Itoa(db), fmt.Sprintf("keys=%d,expires=%d,avg_ttl=0", n.Keys, n.Expires)})
				}
			}
		}
		section("Keyspace", fields)
	}
	if want["commandstats"] {
		var fields [][2]string
		for _, name := range commandNames() {
			c := s.cmdStats[name]
			if n := c.calls.Load(); n > 0 {
				usec := c.lat.sumNs.Load() / 1000
				fields = append(fields, [2]string{"cmdstat_" + name,
					fmt.Sprintf("calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=0,failed_calls=0", n, usec, float64(usec)/float64(n))})
			}
		}
		section("Commandstats", fields)
	}
	return b.String()
}

// replicationFields are INFO replication's Redis fields for st. Redis's
// replication offset counts bytes of its replication stream; Seshat's
// stream is the Raft log, so the offsets are log indexes: the master's is
// its commit index, a replica's the index it has applied (what it has
// processed of the stream).
func replicationFields(st ports.KVStatus) [][2]string {
	var fields [][2]string
	if st.Role == "leader" {
		fields = [][2]string{{"role", "master"}}
	} else {
		host, p, _ := splitPort(st.LeaderAddr)
		link := "up"
		if st.LeaderAddr == "" {
			link = "down"
		}
		applied := u64(uint64(st.Applied))
		fields = [][2]string{
			{"role", "slave"},
			{"master_host", host},
			{"master_port", p},
			{"master_link_status", link},
			{"master_last_io_seconds_ago", "0"},
			{"master_sync_in_progress", "0"},
			{"slave_read_repl_offset", applied},
			{"slave_repl_offset", applied},
			{"slave_priority", "100"},
			{"slave_read_only", "0"},
			{"replica_announced", "1"},
		}
	}
	return append(fields, [][2]string{
		{"connected_slaves", "0"},
		{"master_failover_state", "no-failover"},
		{"master_replid", replID(st)},
		{"master_replid2", strings.Repeat("0", 40)},
		{"master_repl_offset", u64(uint64(st.Commit))},
		{"second_repl_offset", "-1"},
		{"repl_backlog_active", "0"},
		{"repl_backlog_size", "0"},
		{"repl_backlog_first_byte_offset", "0"},
		{"repl_backlog_histlen", "0"},
	}...)
}

// runID is Redis's run_id: 40 hex digits naming this run of the server,
// different after every restart (tools use it to notice one).
func runID(start time.Time) string {
	sum := sha1.Sum(fmt.Appendf(nil, "%d/%d", os.Getpid(), start.UnixNano()))
	return hex.EncodeToString(sum[:])
}

// replID is a 40-hex-digit replication id, as Redis's: the leader's id
// and term, so it changes, like Redis's, when a new master takes over,
// and every node that follows the same leader in the same term shows the
// same one.
func replID(st ports.KVStatus) string {
	return fmt.Sprintf("%020x%020x", uint64(st.Leader), uint64(st.Term))
}

func executable() string {
	p, err := os.Executable()
	if err != nil {
		return ""
	}
	return p
}

// human formats a byte count as Redis's *_human fields do.
func human(n uint64) string {
	f := float64(n)
	switch {
	case n < 1024:
		return strconv.FormatUint(n, 10) + "B"
	case n < 1<<20:
		return fmt.Sprintf("%.2fK", f/1024)
	case n < 1<<30:
		return fmt.Sprintf("%.2fM", f/(1<<20))
	case n < 1<<40:
		return fmt.Sprintf("%.2fG", f/(1<<30))
	}
	return fmt.Sprintf("%.2fT", f/(1<<40))
}
