package resp

// COMMAND DOCS of the collection types (hashes, sets, sorted sets,
// lists), kept apart from docs.go so that each type's entries sit
// together.

// withCollectionDocs adds the collection types' entries to t.
func withCollectionDocs(t map[string]docEntry) map[string]docEntry {
	for _, group := range []map[string]docEntry{hashDocs, setDocs, zsetDocs, listDocs, objectDocs, blockingDocs} {
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

var setDocs = map[string]docEntry{
	"sadd":        {summary: "Adds members to a set, creating it if needed; replies with how many were new.", since: "1.0.0", syntax: "key member [member ...]"},
	"srem":        {summary: "Removes members from a set (the key goes with its last member); replies with how many were removed.", since: "1.0.0", syntax: "key member [member ...]"},
	"smembers":    {summary: "Replies with every member of a set.", since: "1.0.0", syntax: "key"},
	"sismember":   {summary: "Replies 1 if the member is in the set, else 0.", since: "1.0.0", syntax: "key member"},
	"smismember":  {summary: "Replies, for each member given, 1 if it is in the set, else 0.", since: "6.2.0", syntax: "key member [member ...]"},
	"scard":       {summary: "Replies with the number of members of a set; 0 for an absent key.", since: "1.0.0", syntax: "key"},
	"spop":        {summary: "Removes one random member, or count of them, and replies with what it removed.", since: "1.0.0", syntax: "key [count]"},
	"srandmember": {summary: "Replies with one random member, or count of them (distinct if count is positive, possibly repeated if negative), removing nothing.", since: "1.0.0", syntax: "key [count]"},
	"smove":       {summary: "Moves a member from one set to another; replies 1 if it was moved.", since: "1.0.0", syntax: "source:key destination:key member"},
	"sinter":      {summary: "Replies with the members that every one of the sets holds.", since: "1.0.0", syntax: "key [key ...]"},
	"sintercard":  {summary: "Replies with how many members every one of the sets holds, counting no further than the limit.", since: "7.0.0", syntax: "numkeys:integer key [key ...] [LIMIT limit:integer]"},
	"sinterstore": {summary: "Stores the intersection of the sets at the destination and replies with its size.", since: "1.0.0", syntax: "destination:key key [key ...]"},
	"sunion":      {summary: "Replies with the members that any of the sets holds.", since: "1.0.0", syntax: "key [key ...]"},
	"sunionstore": {summary: "Stores the union of the sets at the destination and replies with its size.", since: "1.0.0", syntax: "destination:key key [key ...]"},
	"sdiff":       {summary: "Replies with the members of the first set that none of the others holds.", since: "1.0.0", syntax: "key [key ...]"},
	"sdiffstore":  {summary: "Stores the difference of the first set and the others at the destination and replies with its size.", since: "1.0.0", syntax: "destination:key key [key ...]"},
	"sscan":       {summary: "Iterates over the members of a set, a page at a time.", since: "2.0.0", syntax: "key cursor [MATCH pattern] [COUNT count]"},
}

var zsetDocs = map[string]docEntry{
	"zadd":             {summary: "Adds members with scores to a sorted set or changes their scores, under conditions; replies with how many were added (or changed, with CH), or the new score with INCR.", since: "1.2.0", syntax: "key [NX | XX] [GT | LT] [CH] [INCR] score:double member [score:double member ...]"},
	"zincrby":          {summary: "Adds to a member's score (absent counts as 0) and replies with the new score.", since: "1.2.0", syntax: "key increment:double member"},
	"zrem":             {summary: "Removes members from a sorted set; replies with how many were removed.", since: "1.2.0", syntax: "key member [member ...]"},
	"zscore":           {summary: "Replies with a member's score, or nil.", since: "1.2.0", syntax: "key member"},
	"zmscore":          {summary: "Replies with the scores of several members, nil for the missing ones.", since: "6.2.0", syntax: "key member [member ...]"},
	"zcard":            {summary: "Replies with the number of members of a sorted set; 0 for an absent key.", since: "1.2.0", syntax: "key"},
	"zcount":           {summary: "Replies with how many members have a score within the range.", since: "2.0.0", syntax: "key min:double max:double"},
	"zlexcount":        {summary: "Replies with how many members fall within the range of member names.", since: "2.8.9", syntax: "key min:string max:string"},
	"zrank":            {summary: "Replies with a member's position counting from the lowest score, or nil.", since: "2.0.0", syntax: "key member"},
	"zrevrank":         {summary: "Replies with a member's position counting from the highest score, or nil.", since: "2.0.0", syntax: "key member"},
	"zrange":           {summary: "Replies with the members within a range of positions, scores or names, in either direction, optionally with their scores.", since: "1.2.0", syntax: "key start:string stop:string [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]"},
	"zrangestore":      {summary: "Stores the members a ZRANGE would reply with at the destination and replies with how many.", since: "6.2.0", syntax: "dst:key src:key min:string max:string [BYSCORE | BYLEX] [REV] [LIMIT offset count]"},
	"zrevrange":        {summary: "Replies with the members within a range of positions counted from the highest score.", since: "1.2.0", syntax: "key start stop [WITHSCORES]"},
	"zrangebyscore":    {summary: "Replies with the members whose score is within the range, lowest first.", since: "1.0.5", syntax: "key min:double max:double [WITHSCORES] [LIMIT offset count]"},
	"zrevrangebyscore": {summary: "Replies with the members whose score is within the range, highest first.", since: "2.2.0", syntax: "key max:double min:double [WITHSCORES] [LIMIT offset count]"},
	"zrangebylex":      {summary: "Replies with the members whose name is within the range, for members of equal score.", since: "2.8.9", syntax: "key min:string max:string [LIMIT offset count]"},
	"zrevrangebylex":   {summary: "Replies with the members whose name is within the range, in reverse, for members of equal score.", since: "2.8.9", syntax: "key max:string min:string [LIMIT offset count]"},
	"zremrangebyrank":  {summary: "Removes the members within a range of positions; replies with how many.", since: "2.0.0", syntax: "key start stop"},
	"zremrangebyscore": {summary: "Removes the members whose score is within the range; replies with how many.", since: "1.2.0", syntax: "key min:double max:double"},
	"zremrangebylex":   {summary: "Removes the members whose name is within the range; replies with how many.", since: "2.8.9", syntax: "key min:string max:string"},
	"zpopmin":          {summary: "Removes the members of lowest score, one or count of them, and replies with them and their scores.", since: "5.0.0", syntax: "key [count]"},
	"zpopmax":          {summary: "Removes the members of highest score, one or count of them, and replies with them and their scores.", since: "5.0.0", syntax: "key [count]"},
	"zmpop":            {summary: "Removes members from the lowest or highest end of the first non-empty sorted set of the keys and replies with its name and them.", since: "7.0.0", syntax: "numkeys:integer key [key ...] (MIN | MAX) [COUNT count]"},
	"zrandmember":      {summary: "Replies with one random member, or count of them (distinct if count is positive, possibly repeated if negative), optionally with scores.", since: "6.2.0", syntax: "key [count [WITHSCORES]]"},
	"zunion":           {summary: "Replies with the members of any of the sorted sets, scores combined.", since: "6.2.0", syntax: "numkeys:integer key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE (SUM | MIN | MAX)] [WITHSCORES]"},
	"zinter":           {summary: "Replies with the members of every one of the sorted sets, scores combined.", since: "6.2.0", syntax: "numkeys:integer key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE (SUM | MIN | MAX)] [WITHSCORES]"},
	"zdiff":            {summary: "Replies with the members of the first sorted set that none of the others holds.", since: "6.2.0", syntax: "numkeys:integer key [key ...] [WITHSCORES]"},
	"zunionstore":      {summary: "Stores the union of the sorted sets at the destination and replies with its size.", since: "2.0.0", syntax: "destination:key numkeys:integer key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE (SUM | MIN | MAX)]"},
	"zinterstore":      {summary: "Stores the intersection of the sorted sets at the destination and replies with its size.", since: "2.0.0", syntax: "destination:key numkeys:integer key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE (SUM | MIN | MAX)]"},
	"zdiffstore":       {summary: "Stores the difference of the first sorted set and the others at the destination and replies with its size.", since: "6.2.0", syntax: "destination:key numkeys:integer key [key ...]"},
	"zintercard":       {summary: "Replies with how many members every one of the sorted sets holds, counting no further than the limit.", since: "7.0.0", syntax: "numkeys:integer key [key ...] [LIMIT limit:integer]"},
	"zscan":            {summary: "Iterates over the members and scores of a sorted set, a page at a time.", since: "2.8.0", syntax: "key cursor [MATCH pattern] [COUNT count]"},
}

var listDocs = map[string]docEntry{
	"lpush":     {summary: "Adds elements at the head of a list, creating it if needed; replies with the new length.", since: "1.0.0", syntax: "key element [element ...]"},
	"rpush":     {summary: "Adds elements at the tail of a list, creating it if needed; replies with the new length.", since: "1.0.0", syntax: "key element [element ...]"},
	"lpushx":    {summary: "Adds elements at the head of a list only if the list exists; replies with its length.", since: "2.2.0", syntax: "key element [element ...]"},
	"rpushx":    {summary: "Adds elements at the tail of a list only if the list exists; replies with its length.", since: "2.2.0", syntax: "key element [element ...]"},
	"lpop":      {summary: "Removes and replies with the first element, or the first count of them.", since: "1.0.0", syntax: "key [count]"},
	"rpop":      {summary: "Removes and replies with the last element, or the last count of them.", since: "1.0.0", syntax: "key [count]"},
	"llen":      {summary: "Replies with the length of a list; 0 for an absent key.", since: "1.0.0", syntax: "key"},
	"lrange":    {summary: "Replies with the elements between two positions, both included; negative positions count from the tail.", since: "1.0.0", syntax: "key start stop"},
	"lindex":    {summary: "Replies with the element at a position, or nil.", since: "1.0.0", syntax: "key index"},
	"lset":      {summary: "Replaces the element at a position.", since: "1.0.0", syntax: "key index element"},
	"linsert":   {summary: "Inserts an element before or after the first occurrence of a pivot; replies with the new length, or -1 if the pivot is absent.", since: "2.2.0", syntax: "key (BEFORE | AFTER) pivot element"},
	"lrem":      {summary: "Removes occurrences of an element, from the head (count > 0), the tail (count < 0) or all (0); replies with how many.", since: "1.0.0", syntax: "key count element"},
	"ltrim":     {summary: "Keeps only the elements between two positions, both included.", since: "1.0.0", syntax: "key start stop"},
	"lpos":      {summary: "Replies with the position of matching elements, optionally the rank-th match, count of them, within the first maxlen elements.", since: "6.0.6", syntax: "key element [RANK rank:integer] [COUNT num-matches:integer] [MAXLEN len:integer]"},
	"lmove":     {summary: "Removes an element from one end of a list, pushes it at one end of another, and replies with it.", since: "6.2.0", syntax: "source:key destination:key (LEFT | RIGHT) (LEFT | RIGHT)"},
	"rpoplpush": {summary: "Removes the last element of a list, pushes it at the head of another, and replies with it.", since: "1.2.0", syntax: "source:key destination:key"},
	"lmpop":     {summary: "Removes elements from one end of the first non-empty list of the keys and replies with its name and them.", since: "7.0.0", syntax: "numkeys:integer key [key ...] (LEFT | RIGHT) [COUNT count]"},
}

var objectDocs = map[string]docEntry{
	"object": {summary: "Groups the subcommands that describe how a key's value is kept.", since: "2.2.3", subs: map[string]docEntry{
		"encoding": {summary: "Replies with the name of the encoding Redis would use for the key's value at its size.", since: "2.2.3", syntax: "key"},
		"refcount": {summary: "Replies with the key's reference count (always 1 in Seshat).", since: "2.2.3", syntax: "key"},
		"idletime": {summary: "Replies with the key's idle time in seconds (not tracked in Seshat: 0).", since: "2.2.3", syntax: "key"},
	}},
}
