package resp

// COMMAND DOCS of the blocking pops.
var blockingDocs = map[string]docEntry{
	"blpop":      {summary: "Removes the first element of the first non-empty list of the keys and replies with the key and it, waiting up to timeout seconds (0: for ever) for one; nil if none came.", since: "2.0.0", syntax: "key [key ...] timeout:double"},
	"brpop":      {summary: "Removes the last element of the first non-empty list of the keys and replies with the key and it, waiting up to timeout seconds (0: for ever) for one; nil if none came.", since: "2.0.0", syntax: "key [key ...] timeout:double"},
	"blmove":     {summary: "Moves an element from one end of a list to an end of another and replies with it, waiting up to timeout seconds (0: for ever) for the source to have one; nil if none came.", since: "6.2.0", syntax: "source destination (LEFT | RIGHT) (LEFT | RIGHT) timeout:double"},
	"brpoplpush": {summary: "Moves the last element of a list to the head of another and replies with it, waiting up to timeout seconds (0: for ever) for the source to have one; nil if none came.", since: "2.2.0", syntax: "source destination timeout:double"},
	"blmpop":     {summary: "Removes elements from one end of the first non-empty list of the keys and replies with its name and them, waiting up to timeout seconds (0: for ever) for one; nil if none came.", since: "7.0.0", syntax: "timeout:double numkeys:integer key [key ...] (LEFT | RIGHT) [COUNT count]"},
	"bzpopmin":   {summary: "Removes the lowest-scored member of the first non-empty sorted set of the keys and replies with the key, it and its score, waiting up to timeout seconds (0: for ever) for one; nil if none came.", since: "5.0.0", syntax: "key [key ...] timeout:double"},
	"bzpopmax":   {summary: "Removes the highest-scored member of the first non-empty sorted set of the keys and replies with the key, it and its score, waiting up to timeout seconds (0: for ever) for one; nil if none came.", since: "5.0.0", syntax: "key [key ...] timeout:double"},
	"bzmpop":     {summary: "Removes members from the lowest or highest end of the first non-empty sorted set of the keys and replies with its name and them, waiting up to timeout seconds (0: for ever) for one; nil if none came.", since: "7.0.0", syntax: "timeout:double numkeys:integer key [key ...] (MIN | MAX) [COUNT count]"},
}
