package resp

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain/keyspace"
)

func TestParseSyntax(t *testing.T) {
	key := docArg{Name: "key", Type: "key"}
	tests := []struct {
		line string
		want []docArg
	}{
		{"key", []docArg{key}},
		{"key [key ...]", []docArg{{Name: "key", Type: "key", Multiple: true}}},
		{"key value [key value ...]", []docArg{{Name: "key_value", Type: "block", Multiple: true, Args: []docArg{key, {Name: "value", Type: "string"}}}}},
		{"cursor [MATCH pattern] [COUNT count] [TYPE type]", []docArg{
			{Name: "cursor", Type: "integer"},
			{Name: "pattern", Type: "pattern", Token: "MATCH", Optional: true},
			{Name: "count", Type: "integer", Token: "COUNT", Optional: true},
			{Name: "type", Type: "string", Token: "TYPE", Optional: true},
		}},
		{"key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]", []docArg{
			key,
			{Name: "value", Type: "string"},
			{Name: "nx_xx", Type: "oneof", Optional: true, Args: []docArg{
				{Name: "nx", Type: "pure-token", Token: "NX"},
				{Name: "xx", Type: "pure-token", Token: "XX"},
			}},
			{Name: "get", Type: "pure-token", Token: "GET", Optional: true},
			{Name: "seconds_milliseconds_unix-time-seconds_unix-time-milliseconds_keepttl", Type: "oneof", Optional: true, Args: []docArg{
				{Name: "seconds", Type: "integer", Token: "EX"},
				{Name: "milliseconds", Type: "integer", Token: "PX"},
				{Name: "unix-time-seconds", Type: "unix-time", Token: "EXAT"},
				{Name: "unix-time-milliseconds", Type: "unix-time", Token: "PXAT"},
				{Name: "keepttl", Type: "pure-token", Token: "KEEPTTL"},
			}},
		}},
		{"key bit [start [end [BYTE | BIT]]]", []docArg{
			key,
			{Name: "bit", Type: "integer"},
			{Name: "start_end_byte_bit", Type: "block", Optional: true, Args: []docArg{
				{Name: "start", Type: "integer"},
				{Name: "end_byte_bit", Type: "block", Optional: true, Args: []docArg{
					{Name: "end", Type: "integer"},
					{Name: "byte_bit", Type: "oneof", Optional: true, Args: []docArg{
						{Name: "byte", Type: "pure-token", Token: "BYTE"},
						{Name: "bit", Type: "pure-token", Token: "BIT"},
					}},
				}},
			}},
		}},
		{"source:key destination:key [DB destination-db] [REPLACE]", []docArg{
			{Name: "source", Type: "key"},
			{Name: "destination", Type: "key"},
			{Name: "destination-db", Type: "integer", Token: "DB", Optional: true},
			{Name: "replace", Type: "pure-token", Token: "REPLACE", Optional: true},
		}},
		{"[TYPE (NORMAL | PUBSUB)] [ID client-id [client-id ...]]", []docArg{
			{Name: "normal_pubsub", Type: "oneof", Token: "TYPE", Optional: true, Args: []docArg{
				{Name: "normal", Type: "pure-token", Token: "NORMAL"},
				{Name: "pubsub", Type: "pure-token", Token: "PUBSUB"},
			}},
			{Name: "client-id", Type: "integer", Token: "ID", Optional: true, Multiple: true},
		}},
		{"[PREFIX prefix [PREFIX prefix ...]]", []docArg{
			{Name: "prefix", Type: "string", Token: "PREFIX", Optional: true, Multiple: true, MultipleToken: true},
		}},
		{"[protover [AUTH username password] [SETNAME clientname]]", []docArg{
			{Name: "protover_auth_clientname", Type: "block", Optional: true, Args: []docArg{
				{Name: "protover", Type: "integer"},
				{Name: "auth", Type: "block", Token: "AUTH", Optional: true, Args: []docArg{
					{Name: "username", Type: "string"},
					{Name: "password", Type: "string"},
				}},
				{Name: "clientname", Type: "string", Token: "SETNAME", Optional: true},
			}},
		}},
		{"ip:port | ([USER username] [SKIPME (YES | NO)])", []docArg{
			{Name: "ip:port_username_yes_no", Type: "oneof", Args: []docArg{
				{Name: "ip:port", Type: "string"},
				{Name: "username_yes_no", Type: "block", Args: []docArg{
					{Name: "username", Type: "string", Token: "USER", Optional: true},
					{Name: "yes_no", Type: "oneof", Token: "SKIPME", Optional: true, Args: []docArg{
						{Name: "yes", Type: "pure-token", Token: "YES"},
						{Name: "no", Type: "pure-token", Token: "NO"},
					}},
				}},
			}},
		}},
	}
	for _, tt := range tests {
		got, err := parseSyntax(tt.line)
		if err != nil {
			t.Errorf("parseSyntax(%q): %v", tt.line, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parseSyntax(%q) mismatch (-want +got):\n%s", tt.line, diff)
		}
	}
	for _, bad := range []string{"key ...", "[key ...]", "a [b ...]", "[a", "a]", "(a", "[]", "a | | b", "key [key"} {
		if got, err := parseSyntax(bad); err == nil {
			t.Errorf("parseSyntax(%q) = %+v, want an error", bad, got)
		}
	}
}

// Every command Seshat answers, data or connection, and every subcommand
// it implements, is documented.
func TestDocsCoverCommands(t *testing.T) {
	for _, sp := range keyspace.Commands() {
		if sp.Flags&keyspace.Internal != 0 {
			continue
		}
		if _, ok := docTable[sp.Name]; !ok {
			t.Errorf("no docs entry for data command %q", sp.Name)
		}
	}
	for name := range commandTable {
		e, ok := docTable[name]
		if !ok {
			t.Errorf("no docs entry for %q", name)
			continue
		}
		if e.summary == "" || e.since == "" {
			t.Errorf("docs entry for %q lacks a summary or since", name)
		}
		if _, ok := docReplies[name]; !ok {
			t.Errorf("no COMMAND DOCS reply for %q", name)
		}
	}
	for name := range docTable {
		if _, ok := commandTable[name]; !ok {
			t.Errorf("docs entry for %q, which Seshat does not answer", name)
		}
	}
	subs := map[string][]string{
		"client":  {"setname", "getname", "id", "setinfo", "info", "list", "kill", "no-evict", "no-touch", "help"},
		"command": {"count", "info", "docs", "list", "getkeys", "help"},
		"config":  {"get", "set", "resetstat", "rewrite", "help"},
		"cluster": {"slots", "shards", "nodes", "info", "myid", "keyslot"},
	}
	for name, want := range subs {
		if len(docTable[name].subs) != len(want) {
			t.Errorf("%s documents %d subcommands, want %d", name, len(docTable[name].subs), len(want))
		}
		for _, sub := range want {
			if _, ok := docTable[name].subs[sub]; !ok {
				t.Errorf("no docs entry for %s|%s", name, sub)
			}
		}
	}
}
