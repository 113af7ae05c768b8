package resp

// COMMAND DOCS of the collection types (hashes, sets, sorted sets,
// lists), kept apart from docs.go so that each type's entries sit
// together.

// withCollectionDocs adds the collection types' entries to t.
func withCollectionDocs(t map[string]docEntry) map[string]docEntry {
	for _, group := range []map[string]docEntry{hashDocs} {
		for name, e := range group {
			t[name] = e
		}
	}
	return t
}

var hashDocs = map[string]docEntry{
	"hset":         {summary: "Sets fields of a hash to values, creating the hash if needed; replies with how many fields are new.", since: "2.0.0", syntax: "key field value [field value ...]"},
	"hmset":        {summary: "Sets fields of a hash to values, creating the hash if needed; replies OK (the older form of HSET).", since: "2.0.0", syntax: "key field value [field value ...]"},
	"hsetnx":       {summary: "Sets one field of a hash only if the field is not there yet; replies 1 if it did.", since: "2.0.0", syntax: "key field value"},
	"hget":         {summary: "Replies with the value of one field of a hash, or nil.", since: "2.0.0", syntax: "key field"},
	"hmget":        {summary: "Replies with the values of several fields of a hash, nil for the missing ones.", since: "2.0.0", syntax: "key field [field ...]"},
	"hgetall":      {summary: "Replies with every field of a hash followed by its value.", since: "2.0.0", syntax: "key"},
	"hkeys":        {summary: "Replies with the names of every field of a hash.", since: "2.0.0", syntax: "key"},
	"hvals":        {summary: "Replies with the value of every field of a hash.", since: "2.0.0", syntax: "key"},
	"hdel":         {summary: "Removes fields from a hash (the key goes with its last field); replies with how many were removed.", since: "2.0.0", syntax: "key field [field ...]"},
	"hexists":      {summary: "Replies 1 if a hash has the field, else 0.", since: "2.0.0", syntax: "key field"},
	"hlen":         {summary: "Replies with the number of fields of a hash; 0 for an absent key.", since: "2.0.0", syntax: "key"},
	"hstrlen":      {summary: "Replies with the length in bytes of one field's value; 0 if there is none.", since: "3.2.0", syntax: "key field"},
	"hincrby":      {summary: "Adds an integer to the integer value of a hash field (absent counts as 0) and replies with the result.", since: "2.0.0", syntax: "key field increment"},
	"hincrbyfloat": {summary: "Adds a decimal number to the numeric value of a hash field (absent counts as 0) and replies with the result.", since: "2.6.0", syntax: "key field increment:double"},
	"hrandfield":   {summary: "Replies with one random field, or with count of them (distinct if count is positive, possibly repeated if negative), optionally with their values.", since: "6.2.0", syntax: "key [count [WITHVALUES]]"},
	"hscan":        {summary: "Iterates over the fields and values of a hash, a page at a time.", since: "2.8.0", syntax: "key cursor [MATCH pattern] [COUNT count]"},
}
