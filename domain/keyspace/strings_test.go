package keyspace

import (
	"math"
	"math/big"
	"strings"
	"testing"
)

// The expected replies below were checked against redis-server 7.0.15.

// stored returns key's stored record in database 0 (expired or not).
func (x *tester) stored(key string) (Record, bool) {
	x.t.Helper()
	r, found, _ := x.st.Get(0, []byte(key))
	return r, found
}

// expectDeadline checks key's deadline, in ms from now; -1 none, -2 no key.
func (x *tester) expectDeadline(key string, want int64) {
	x.t.Helper()
	r, found := x.stored(key)
	got := int64(-2)
	switch {
	case found && r.ExpireAt == 0:
		got = -1
	case found:
		got = r.ExpireAt - x.now
	}
	if got != want {
		x.t.Errorf("TTL of %q: %d ms, want %d", key, got, want)
	}
}

const (
	strErrNotInt    = "ERR value is not an integer or out of range"
	strErrNotFloat  = "ERR value is not a valid float"
	strErrNaNInf    = "ERR increment would produce NaN or Infinity"
	strErrTooBig    = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	strErrBitOffset = "ERR bit offset is not an integer or out of range"
	strErrBitValue  = "ERR bit is not an integer or out of range"
	strErrSyntax    = "ERR syntax error"
)

func TestStringSpecs(t *testing.T) {
	// As COMMAND INFO of redis 7.0.15 gives them.
	want := map[string]struct {
		arity             int
		flags             string
		first, last, step int
		group             string
	}{
		"setnx":       {3, "write denyoom fast", 1, 1, 1, "string"},
		"setex":       {4, "write denyoom", 1, 1, 1, "string"},
		"psetex":      {4, "write denyoom", 1, 1, 1, "string"},
		"getset":      {3, "write denyoom fast", 1, 1, 1, "string"},
		"getdel":      {2, "write fast", 1, 1, 1, "string"},
		"getex":       {-2, "write fast", 1, 1, 1, "string"},
		"msetnx":      {-3, "write denyoom", 1, -1, 2, "string"},
		"append":      {3, "write denyoom fast", 1, 1, 1, "string"},
		"strlen":      {2, "readonly fast", 1, 1, 1, "string"},
		"getrange":    {4, "readonly", 1, 1, 1, "string"},
		"substr":      {4, "readonly", 1, 1, 1, "string"},
		"setrange":    {4, "write denyoom", 1, 1, 1, "string"},
		"incr":        {2, "write denyoom fast", 1, 1, 1, "string"},
		"incrby":      {3, "write denyoom fast", 1, 1, 1, "string"},
		"decr":        {2, "write denyoom fast", 1, 1, 1, "string"},
		"decrby":      {3, "write denyoom fast", 1, 1, 1, "string"},
		"incrbyfloat": {3, "write denyoom fast", 1, 1, 1, "string"},
		"setbit":      {4, "write denyoom", 1, 1, 1, "bitmap"},
		"getbit":      {3, "readonly fast", 1, 1, 1, "bitmap"},
		"bitcount":    {-2, "readonly", 1, 1, 1, "bitmap"},
		"bitpos":      {-3, "readonly", 1, 1, 1, "bitmap"},
	}
	for name, w := range want {
		s := Lookup([]byte(strings.ToUpper(name)))
		if s == nil {
			t.Errorf("%s: not registered", name)
			continue
		}
		if s.Name != name || s.Arity != w.arity || strings.Join(s.Flags.Names(), " ") != w.flags ||
			s.FirstKey != w.first || s.LastKey != w.last || s.Step != w.step || s.Group != w.group {
			t.Errorf("%s: spec %+v, want %+v", name, *s, w)
		}
	}
}

func TestStringArity(t *testing.T) {
	x := newTester(t)
	for _, args := range [][]string{
		{"setnx", "k"}, {"setex", "k", "1"}, {"psetex", "k", "1"}, {"getset", "k"},
		{"getdel"}, {"getdel", "k", "x"}, {"getex"}, {"msetnx", "k"}, {"append", "k"},
		{"strlen"}, {"getrange", "k", "0"}, {"substr", "k", "0"}, {"setrange", "k", "0"},
		{"incr"}, {"incrby", "k"}, {"decr", "k", "1"}, {"decrby", "k"}, {"incrbyfloat", "k"},
		{"setbit", "k", "0"}, {"getbit", "k"}, {"bitcount"}, {"bitpos", "k"},
	} {
		x.expect(errr("ERR wrong number of arguments for '"+args[0]+"' command"), args...)
	}
	// MSETNX checks its pairs itself.
	x.expect(errr("ERR wrong number of arguments for 'msetnx' command"), "msetnx", "a", "1", "b")
}

func TestSetNXAndExpiringSets(t *testing.T) {
	x := newTester(t)
	x.expect(num(1), "setnx", "k", "v")
	x.expect(num(0), "setnx", "k", "w")
	x.expect(bulk("v"), "get", "k")

	x.expect(errr("ERR invalid expire time in 'setex' command"), "setex", "k", "0", "v")
	x.expect(errr("ERR invalid expire time in 'setex' command"), "setex", "k", "-1", "v")
	x.expect(errr("ERR invalid expire time in 'setex' command"), "setex", "k", "9223372036854775807", "v")
	x.expect(errr(strErrNotInt), "setex", "k", "a", "v")
	x.expect(errr(strErrNotInt), "setex", "k", "+1", "v")
	x.expect(errr("ERR invalid expire time in 'psetex' command"), "psetex", "k", "-5", "v")
	x.expect(errr("ERR invalid expire time in 'psetex' command"), "psetex", "k", "9223372036854775807", "v")
	x.expect(errr(strErrNotInt), "psetex", "k", "1.5", "v")
	x.expect(bulk("v"), "get", "k")
	x.expectDeadline("k", -1)

	x.expect(ok, "setex", "k", "10", "s")
	x.expectDeadline("k", 10_000)
	x.expect(bulk("s"), "get", "k")
	x.expect(ok, "psetex", "k", "5000", "p")
	x.expectDeadline("k", 5000)
	x.now += 4999
	x.expect(bulk("p"), "get", "k")
	x.now++
	x.expect(nil_, "get", "k")
	// An expired key is absent to SETNX.
	x.expect(num(1), "setnx", "k", "again")
	x.expectDeadline("k", -1)
}

func TestGetSetGetDel(t *testing.T) {
	x := newTester(t)
	x.expect(nil_, "getset", "k", "1")
	x.expect(bulk("1"), "getset", "k", "2")
	x.expect(bulk("2"), "get", "k")
	// GETSET clears the deadline.
	x.expect(ok, "set", "k", "v", "EX", "100")
	x.expect(bulk("v"), "getset", "k", "w")
	x.expectDeadline("k", -1)

	x.expect(bulk("w"), "getdel", "k")
	x.expect(num(0), "exists", "k")
	x.expect(nil_, "getdel", "k")
	x.expect(ok, "set", "k", "v", "PX", "10")
	x.now += 10
	x.expect(nil_, "getdel", "k")
}

func TestGetEx(t *testing.T) {
	x := newTester(t)
	x.expect(nil_, "getex", "missing")
	// An absent key answers nil before the deadline is checked, not before
	// the syntax.
	x.expect(nil_, "getex", "missing", "EX", "abc")
	x.expect(nil_, "getex", "missing", "EX", "-1")
	x.expect(errr(strErrSyntax), "getex", "missing", "foo")

	x.expect(ok, "set", "k", "v", "EX", "100")
	x.expect(bulk("v"), "getex", "k")
	x.expectDeadline("k", 100_000)
	x.expect(bulk("v"), "getex", "k", "persist")
	x.expectDeadline("k", -1)
	x.expect(bulk("v"), "getex", "k", "PERSIST", "PERSIST")
	x.expect(bulk("v"), "getex", "k", "EX", "50")
	x.expectDeadline("k", 50_000)
	x.expect(bulk("v"), "getex", "k", "px", "1234")
	x.expectDeadline("k", 1234)
	x.expect(bulk("v"), "getex", "k", "EXAT", "99999999999")
	x.expectDeadline("k", 99999999999_000-x.now)
	x.expect(bulk("v"), "getex", "k", "PXAT", "99999999999999")
	x.expectDeadline("k", 99999999999999-x.now)
	x.expect(bulk("v"), "getex", "k", "EX", "1", "EX", "2")
	x.expectDeadline("k", 2000)

	for _, args := range [][]string{
		{"foo"}, {"EX"}, {"EX", "1", "PX", "1"}, {"PERSIST", "EX", "1"}, {"EX", "1", "PERSIST"},
		{"NX"}, {"XX"}, {"GET"}, {"KEEPTTL"},
	} {
		x.expect(errr(strErrSyntax), append([]string{"getex", "k"}, args...)...)
	}
	bad := errr("ERR invalid expire time in 'getex' command")
	x.expect(bad, "getex", "k", "EX", "0")
	x.expect(bad, "getex", "k", "EX", "-1")
	x.expect(bad, "getex", "k", "PX", "9223372036854775807")
	x.expect(bad, "getex", "k", "EX", "9223372036854775807")
	x.expect(bad, "getex", "k", "EXAT", "0")
	x.expect(errr(strErrNotInt), "getex", "k", "EX", "abc")
	x.expect(errr(strErrNotInt), "getex", "k", "PXAT", "1.5")
	x.expectDeadline("k", 2000)

	// A deadline in the past deletes the key, after the reply.
	x.expect(bulk("v"), "getex", "k", "PXAT", "1")
	x.expect(num(0), "exists", "k")
	x.expectDeadline("k", -2)
	x.expect(ok, "set", "k", "v")
	x.expect(bulk("v"), "getex", "k", "EXAT", "1")
	x.expectDeadline("k", -2)
}

func TestGetExPersistWithoutDeadlineWritesNothing(t *testing.T) {
	x := newTester(t)
	x.expect(ok, "set", "k", "v")
	before, _ := x.stored("k")
	x.expect(bulk("v"), "getex", "k", "PERSIST")
	x.expect(bulk("v"), "getex", "k")
	if after, _ := x.stored("k"); after.Version != before.Version {
		t.Errorf("version %d, want %d (untouched)", after.Version, before.Version)
	}
}

func TestMSetNX(t *testing.T) {
	x := newTester(t)
	x.expect(num(1), "msetnx", "a", "1", "a", "2")
	x.expect(bulk("2"), "get", "a")
	x.expect(num(0), "msetnx", "b", "1", "a", "3")
	x.expect(num(0), "exists", "b")
	x.expect(bulk("2"), "get", "a")
	x.expect(num(1), "msetnx", "b", "1", "c", "2")
	x.expect(arr(bulk("2"), bulk("1"), bulk("2")), "mget", "a", "b", "c")
	// An expired key does not count.
	x.expect(ok, "set", "t", "v", "PX", "5")
	x.now += 5
	x.expect(num(1), "msetnx", "t", "new", "d", "4")
	x.expectDeadline("t", -1)
}

func TestAppendStrlen(t *testing.T) {
	x := newTester(t)
	x.expect(num(0), "strlen", "k")
	x.expect(num(5), "append", "k", "hello")
	x.expect(num(11), "append", "k", " world")
	x.expect(bulk("hello world"), "get", "k")
	x.expect(num(11), "strlen", "k")
	x.expect(num(11), "append", "k", "")
	// APPEND of nothing to an absent key creates it empty.
	x.expect(num(0), "append", "empty", "")
	x.expect(num(1), "exists", "empty")
	x.expect(num(0), "strlen", "empty")
	// The deadline stays.
	x.expect(ok, "set", "t", "5", "EX", "100")
	x.expect(num(2), "append", "t", "x")
	x.expectDeadline("t", 100_000)
	x.expect(num(1), "append", "n", "\x00")
	x.expect(bulk("\x00"), "get", "n")
}

func TestGetRange(t *testing.T) {
	x := newTester(t)
	x.expect(bulk(""), "getrange", "missing", "0", "-1")
	x.expect(errr(strErrNotInt), "getrange", "missing", "a", "1")
	x.expect(errr(strErrNotInt), "getrange", "missing", "0", "1.0")
	x.expect(ok, "set", "k", "This is a string")
	for _, c := range []struct {
		start, end, want string
	}{
		{"0", "3", "This"},
		{"-3", "-1", "ing"},
		{"0", "-1", "This is a string"},
		{"10", "100", "string"},
		{"5", "3", ""},
		{"-1", "-5", ""},
		{"-100", "-100", "T"},
		{"-100", "2", "Thi"},
		{"15", "15", "g"},
		{"16", "20", ""},
		{"-1", "0", ""},
		{"0", "0", "T"},
		{"-9223372036854775808", "9223372036854775807", "This is a string"},
		{"9223372036854775807", "-9223372036854775808", ""},
	} {
		x.expect(bulk(c.want), "getrange", "k", c.start, c.end)
		x.expect(bulk(c.want), "substr", "k", c.start, c.end)
	}
	x.expect(ok, "set", "e", "")
	x.expect(bulk(""), "getrange", "e", "0", "-1")
	x.expect(bulk(""), "getrange", "e", "0", "0")
}

func TestSetRange(t *testing.T) {
	x := newTester(t)
	x.expect(num(11), "setrange", "k", "6", "world")
	x.expect(bulk("\x00\x00\x00\x00\x00\x00world"), "get", "k")
	x.expect(num(11), "setrange", "k", "0", "hello ")
	x.expect(bulk("hello world"), "get", "k")
	x.expect(num(11), "setrange", "k", "6", "Redis")
	x.expect(bulk("hello Redis"), "get", "k")
	x.expect(num(13), "setrange", "k", "11", "!!")
	x.expect(bulk("hello Redis!!"), "get", "k")
	x.expect(num(13), "setrange", "k", "100", "")
	x.expect(num(13), "setrange", "k", "9223372036854775807", "")
	// Nothing on an absent key: no key.
	x.expect(num(0), "setrange", "nk", "5", "")
	x.expect(num(0), "exists", "nk")
	x.expect(errr("ERR offset is out of range"), "setrange", "k", "-1", "x")
	x.expect(errr("ERR offset is out of range"), "setrange", "k", "-1", "")
	x.expect(errr(strErrNotInt), "setrange", "k", "a", "x")
	x.expect(errr(strErrNotInt), "setrange", "k", "9223372036854775808", "x")
	x.expect(errr(strErrTooBig), "setrange", "k", "9223372036854775807", "x")
	x.expect(errr(strErrTooBig), "setrange", "k", "536870912", "x")
	x.expect(errr(strErrTooBig), "setrange", "nk", "536870911", "xy")
	x.expect(num(0), "exists", "nk")
	// The deadline stays.
	x.expect(ok, "set", "t", "5", "EX", "100")
	x.expect(num(1), "setrange", "t", "0", "y")
	x.expectDeadline("t", 100_000)
	x.expect(bulk("y"), "get", "t")
}

func TestValueLimit(t *testing.T) {
	// As proto-max-bulk-len 1048576.
	x := newTester(t)
	x.e.MaxValueBytes = 1 << 20
	x.expect(errr(strErrTooBig), "setrange", "k", "1048570", "0123456789")
	x.expect(num(0), "exists", "k")
	x.expect(num(1048576), "setrange", "k", "1048566", "0123456789")
	x.expect(errr(strErrTooBig), "append", "k", "x")
	x.expect(num(1048576), "append", "k", "")
	x.expect(num(1048576), "strlen", "k")
	x.expect(errr(strErrBitOffset), "setbit", "b", "8388608", "1")
	x.expect(errr(strErrBitOffset), "getbit", "b", "8388608")
	x.expect(num(0), "setbit", "b", "8388607", "1")
	x.expect(num(1048576), "strlen", "b")
	x.expect(num(1), "getbit", "b", "8388607")
}

func TestIncrDecr(t *testing.T) {
	x := newTester(t)
	x.expect(num(1), "incr", "n")
	x.expect(num(11), "incrby", "n", "10")
	x.expect(num(10), "decr", "n")
	x.expect(num(-5), "decrby", "n", "15")
	x.expect(num(0), "incrby", "n", "5")
	x.expect(bulk("0"), "get", "n")
	x.expect(num(-1), "decr", "fresh")
	x.expect(num(7), "decrby", "fresh2", "-7")
	x.expect(num(-9223372036854775808), "incrby", "fresh3", "-9223372036854775808")

	for _, v := range []string{"", "a", " 1", "1 ", "+1", "01", "-0", "1.0", "9223372036854775808", "-9223372036854775809", "0x10"} {
		x.expect(ok, "set", "s", v)
		x.expect(errr(strErrNotInt), "incr", "s")
		x.expect(errr(strErrNotInt), "decrby", "s", "1")
		x.expect(errr(strErrNotInt), "incrby", "n", v)
		x.expect(errr(strErrNotInt), "decrby", "n", v)
	}
	x.expect(bulk("0"), "get", "n")

	x.expect(ok, "set", "m", "9223372036854775807")
	x.expect(errr("ERR increment or decrement would overflow"), "incr", "m")
	x.expect(errr("ERR increment or decrement would overflow"), "decrby", "m", "-1")
	x.expect(num(-1), "incrby", "m", "-9223372036854775808")
	x.expect(ok, "set", "m", "-9223372036854775808")
	x.expect(errr("ERR increment or decrement would overflow"), "decr", "m")
	x.expect(errr("ERR increment or decrement would overflow"), "incrby", "m", "-1")
	x.expect(num(-1), "decrby", "m", "-9223372036854775807")
	x.expect(errr("ERR decrement would overflow"), "decrby", "m", "-9223372036854775808")
	x.expect(errr("ERR decrement would overflow"), "decrby", "missing", "-9223372036854775808")
	x.expect(num(0), "exists", "missing")

	// The deadline stays; SET clears it.
	x.expect(ok, "set", "t", "5", "EX", "100")
	x.expect(num(6), "incr", "t")
	x.expect(num(8), "incrby", "t", "2")
	x.expect(num(7), "decr", "t")
	x.expect(num(6), "decrby", "t", "1")
	x.expectDeadline("t", 100_000)
	x.now += 100_000
	x.expect(num(1), "incr", "t")
	x.expectDeadline("t", -1)
}

func TestIncrByFloat(t *testing.T) {
	x := newTester(t)
	for _, c := range []struct{ by, want string }{
		{"0.1", "0.1"},
		{"10.5", "10.5"},
		{"3.0e3", "3000"},
		{"5.0e3", "5000"},
		{"-5.5", "-5.5"},
		{"0.3", "0.3"},
		{"-0.1", "-0.1"},
		{"1e20", "100000000000000000000"},
		{"-0", "0"},
		{"00012.50", "12.5"},
		{".5", "0.5"},
		{"5.", "5"},
		{"+.5e1", "5"},
		{"0x1p3", "8"},
		{"0x1.8p-2", "0.375"},
		{"0x.8", "0.5"},
		{"0xAbC.dEp10", "2814840"},
		{"3", "3"},
		{"1e-4940", "0"},
		// A tie at the 18th decimal rounds to even, as printf does.
		{"0.000003814697265625", "0.00000381469726562"},
		{"1.5e300", "1500000000000000000049800109861472166362379239118673928551219718248973529929812708792854310575830930686530644566050229406926646739311017606984258288377434143937602778196710661234655944195770838513268846826150205418632995547271874827072936230594920013241190363994471886080567336615911694509046614720512"},
		{"-1.1207140923566332e+10", "-11207140923.56633200030773878"},
	} {
		x.expect(bulk(c.want), "incrbyfloat", "f"+c.by, c.by)
	}
	x.expect(ok, "set", "k", "10.5")
	x.expect(bulk("10.6"), "incrbyfloat", "k", "0.1")
	x.expect(bulk("10.6"), "get", "k")
	x.expect(bulk("10"), "incrbyfloat", "k", "-0.6")
	x.expect(bulk("0"), "incrbyfloat", "k", "-10")
	x.expect(ok, "set", "k", "1.5e300")
	x.expect(bulk("1500000000000000000049800109861472166362379239118673928551219718248973529929812708792854310575830930686530644566050229406926646739311017606984258288377434143937602778196710661234655944195770838513268846826150205418632995547271874827072936230594920013241190363994471886080567336615911694509046614720512"), "incrbyfloat", "k", "1")
	x.expect(ok, "set", "k", "1")
	x.expect(bulk("1.00000000000000001"), "incrbyfloat", "k", "0.00000000000000001")
	x.expect(ok, "set", "k", "0.1")
	x.expect(bulk("0.3"), "incrbyfloat", "k", "0.2")
	x.expect(ok, "set", "k", "5")
	x.expect(bulk("5.00000000000000001"), "incrbyfloat", "k", "1e-17")
	x.expect(ok, "set", "k", "5")
	x.expect(bulk("5"), "incrbyfloat", "k", "1e-20")

	// The largest values print in full.
	x.expect(ok, "set", "big", "1.1e4932")
	r := x.do("incrbyfloat", "big", "0")
	if s := string(r.Bulk); len(s) != 4933 || !strings.HasPrefix(s, "1099999999999999999974373107528241817659030869279043407734988001817024145106513112504247507989334878520248308281361039478032934883265306874247558219180296632615879769284426144446587301862925949044860103916345584575444940764072805023841127038694056136469796496577126541639538344365510095288710750981114492840403606011035722140950388865380426626956598546884662554156676899849274474003946737153202663113471019038507440355784997612447212190315662150842498356408074864010786635463165434158504462993091203108212159354301043245621277048030590981217752749212401923243127138342167748918430168950395586853357811402450292366170936077374287304280516496791243181744660062034825766801562331288150173113824584687813457202545074014431803319775315998574294061353416922646887741547820181608294728217534644103487399058533712092272305657732870431777406038928081305932744454766811852554655135914113871013315952423872114812576001290757699422940111221911945045555478113741593424829620020501745005161710852074978186012721939150513407866391014807697433774795954470026204995541086095733716024007432033404098852964387711906037511284559079635511511105265001649140398250845901004463286876433863964550221008676952276372763575067911963853973001567055756406569343128045403641205087980394365831369003383371685227603278316511752728825492551800986973888739380062196017445702056808445069966439845998936831463863177685365729564195287455361289677323687699873017110388717240797343316362732376481099624642042706786493959231517121398104419805714616715338680064974161422455804452567918920783640928588852013556050411583586757800270730283623088608996390812328255730910963083908032153603402103429802759514853593616153177067415500911713676922818119941758485502483713233836391339711841574287048214054398466058177648133951583659697856319367061612039944071671309477097363997509664406124665760289811187313097505600091492012780926469541380190748595297191682855137672939243900595892243809281653980678128535594541228440218634574770280704029980829588473167907433901747603664817549052020034363401122401934497142344372734618140572998330462995589527034982774919647972676484630128249232151111400418665059666503407412833853472426302097183776179610563338678157970778598436154852230047505079011474601450756518383098667900525033393730130873831407982398320863044521090953981107647680374498820504991155090311321944715075464093659603368699803397944284348470932230600497140776992039106460467277241357274444180967598387038056950513122745966308365514701933261279467260780160047872244699873110020313983169069446477846410770223000745472326974222305733387182924217259845948288427247030039382730488672890229875724957711454218804526205902529773029920794664316040495109529187373742219119822413974416337644618016902599598961368374895207391065016376787494616448057680729910798524806625099187066004462348989545247911652754375344583008535499532314813905020948248399115016943815715937994396941618435619169772385095396152416767195742049851747613446789499374318798671625381003617099318979921187323092570719108388936497413021570787532233753573732786708918585920746076107959919806474257304522391293937223772917858124175606129639031362747570161480150988788136235047002696138807315834676967498996056893633045100327055704032355749831583184677746838894850303565926247689146391879788439427269920324541554278141768823388006416617704470227965980425854679637276674238801946369896560455431159381910870233417834630593573883650136801998237960628020208247398481757468084566811835562055730279594121590811427373679641364043894097024788364847476979150654114561895755972439261022946239838345042369327640360307656142990885171448040586898198259723915086866804741833530114682089637546435457028154781181140931264907183459409078936729981544306081683010025321003041561883391470801186929063790223066325097692289553470222652062743716817355209725137427212444146559934968597141351682488626743327756829921471593990068872438225701901480173844607644558335922716519091818910648440929906650467666042330589650648201165134007539549842213154851674975025009949919518589140278940864888841740301067579841024563714682594585397073634656151707861040438536974108573443444281454191384584475697323062320067494855247657937783341904958252264900431607261250517735640918806139627134190829662969929928161163150996697459754147389369654546789346295061279066556987634926829726090875108170773496087213988428078725430074999430133270176603727855456303366522730112671767574399401456844648538462547659531008270166403919064525301187429965384383165284377279321704286099496402949518133649750949806158890635637969041636190902934947020628579214382009278904086610444871161338666575623527742889622596223558611437936647589192801663915111889094971481486408327912032020150988471330536026172285448434458991524947597084554968263341074076517000345409674031798358143745760733861343415397393159190284273438760077636163984763308746185933756214688892548733454529957267178522323242088136704") {
		t.Errorf("incrbyfloat of 1.1e4932: %.40q... (%d bytes)", s, len(s))
	}
	x.expect(errr(strErrNaNInf), "incrbyfloat", "big", "1.1e4932")
	x.expect(ok, "set", "big", "-1.1e4932")
	x.expect(errr(strErrNaNInf), "incrbyfloat", "big", "-1.1e4932")

	for _, bad := range []string{
		"", " 1", "1 ", "\t1", "a", "1e", "1e+", ".", "e5", "0x", "0xg", "1p3", "0x1p", "0b1", "0o7", "1_0", "1,5",
		"nan", "-nan", "NaN", "nan(1)", "1e5000", "-1e5000", "1e-5000", "0x1p-16500", "0x1p16384", "infinit", "1\x00",
		"1." + strings.Repeat("0", 5118),
	} {
		x.expect(errr(strErrNotFloat), "incrbyfloat", "nf", bad)
	}
	x.expect(num(0), "exists", "nf")
	for _, inf := range []string{"inf", "-inf", "+inf", "INF", "infinity", "-Infinity"} {
		x.expect(errr(strErrNaNInf), "incrbyfloat", "nf", inf)
	}
	x.expect(ok, "set", "s", "inf")
	x.expect(errr(strErrNaNInf), "incrbyfloat", "s", "1")
	for _, bad := range []string{"abc", " 1", "nan", "", "1e5000"} {
		x.expect(ok, "set", "s", bad)
		x.expect(errr(strErrNotFloat), "incrbyfloat", "s", "1")
		// The value is read before the increment.
		x.expect(errr(strErrNotFloat), "incrbyfloat", "s", "inf")
	}
	// The longest string a float may be.
	x.expect(ok, "set", "s", "1."+strings.Repeat("0", 5117))
	x.expect(bulk("1"), "incrbyfloat", "s", "0")

	// The deadline stays.
	x.expect(ok, "set", "t", "5", "EX", "100")
	x.expect(bulk("6.5"), "incrbyfloat", "t", "1.5")
	x.expectDeadline("t", 100_000)
}

func TestLongDouble(t *testing.T) {
	// The least subnormal survives; half of it rounds to zero (an
	// underflow, refused); the greatest finite value parses, 2^16384 not.
	for _, c := range []struct {
		s  string
		ok bool
	}{
		{"0x1p-16445", true}, {"0x1p-16446", false}, {"0x1.8p-16446", true},
		{"0x1p-16382", true}, {"0x1.fffffffffffffffep16383", true}, {"0x1.ffffffffffffffffp16383", false},
		{"0x1p16384", false}, {"3.6e-4951", true}, {"1e-4952", false}, {"1.18e4932", true}, {"1.19e4932", false},
		{"0e999999999999999999999", true}, {"0x0p99999", true}, {"1e-99999999999999999999", false},
	} {
		f, ok := ParseLongDouble([]byte(c.s))
		if ok != c.ok {
			t.Errorf("ParseLongDouble(%q) = %v, %v; want ok %v", c.s, f, ok, c.ok)
		}
	}
	// A subnormal keeps only the bits its exponent allows: 1 + 2^-63
	// times the least normal value rounds to the least normal value.
	f, ok := ParseLongDouble([]byte("0x1.0000000000000001p-16382"))
	want := new(big.Float).SetMantExp(big.NewFloat(1), -16382)
	if !ok || f.Cmp(want) != 0 {
		t.Errorf("ParseLongDouble(0x1.0000000000000001p-16382) = %v, %v", f, ok)
	}
	g, _ := ParseLongDouble([]byte("0x1.0000000000000001p-16440"))
	if want := new(big.Float).SetMantExp(big.NewFloat(1), -16440); g.Cmp(want) != 0 {
		t.Errorf("subnormal rounding: %v", g)
	}
	// Ties round to even: 1 + 2^-64 is halfway between 1 and 1 + 2^-63.
	h, _ := ParseLongDouble([]byte("0x1.00000000000000008p0"))
	if h.Cmp(big.NewFloat(1)) != 0 {
		t.Errorf("tie: %v", h.Text('p', 0))
	}
	if s := FormatLongDouble(new(big.Float).SetFloat64(math.Copysign(0, -1))); s != "0" {
		t.Errorf("-0 formats as %q", s)
	}
}

func TestSetBitGetBit(t *testing.T) {
	x := newTester(t)
	x.expect(num(0), "getbit", "k", "0")
	x.expect(num(0), "getbit", "k", "4294967295")
	x.expect(num(0), "setbit", "k", "7", "1")
	x.expect(bulk("\x01"), "get", "k")
	x.expect(num(1), "setbit", "k", "7", "0")
	x.expect(bulk("\x00"), "get", "k")
	x.expect(num(0), "setbit", "k", "1", "1")
	x.expect(num(0), "setbit", "k", "23", "1")
	x.expect(bulk("\x40\x00\x01"), "get", "k")
	x.expect(num(1), "getbit", "k", "1")
	x.expect(num(0), "getbit", "k", "0")
	x.expect(num(1), "getbit", "k", "23")
	x.expect(num(0), "getbit", "k", "24")
	x.expect(num(0), "getbit", "k", "1000")
	// Clearing a bit past the end still grows the value.
	x.expect(num(0), "setbit", "k", "39", "0")
	x.expect(num(5), "strlen", "k")

	x.expect(ok, "set", "s", "a") // 0x61
	for i, want := range []int64{0, 1, 1, 0, 0, 0, 0, 1} {
		x.expect(num(want), "getbit", "s", string(rune('0'+i)))
	}

	for _, off := range []string{"-1", "a", "4294967296", "9223372036854775807", "+1", "1.0", ""} {
		x.expect(errr(strErrBitOffset), "setbit", "k", off, "1")
		x.expect(errr(strErrBitOffset), "getbit", "k", off)
		x.expect(errr(strErrBitOffset), "getbit", "missing", off)
	}
	for _, v := range []string{"2", "-1", "a", "", "01", "9223372036854775808"} {
		x.expect(errr(strErrBitValue), "setbit", "k", "0", v)
	}
	// The offset is checked before the bit.
	x.expect(errr(strErrBitOffset), "setbit", "k", "-1", "2")

	// The deadline stays.
	x.expect(ok, "set", "t", "5", "EX", "100")
	x.expect(num(0), "setbit", "t", "100", "1")
	x.expect(num(1), "setbit", "t", "100", "1")
	x.expectDeadline("t", 100_000)

	// A SETBIT that changes nothing does not write (WATCH sees no change).
	before, _ := x.stored("t")
	x.expect(num(1), "setbit", "t", "100", "1")
	x.expect(num(0), "setbit", "t", "0", "0")
	if after, _ := x.stored("t"); after.Version != before.Version {
		t.Errorf("version %d, want %d (untouched)", after.Version, before.Version)
	}
}

func TestBitCount(t *testing.T) {
	x := newTester(t)
	// An absent key counts 0 whatever the arguments.
	x.expect(num(0), "bitcount", "missing")
	x.expect(num(0), "bitcount", "missing", "1")
	x.expect(num(0), "bitcount", "missing", "a", "b", "c", "d")

	x.expect(ok, "set", "k", "foobar")
	for _, c := range []struct {
		args []string
		want int64
	}{
		{nil, 26},
		{[]string{"0", "0"}, 4},
		{[]string{"1", "1"}, 6},
		{[]string{"1", "1", "byte"}, 6},
		{[]string{"5", "30", "BIT"}, 17},
		{[]string{"0", "-1"}, 26},
		{[]string{"-2", "-1"}, 7},
		{[]string{"-1", "-2"}, 0},
		{[]string{"-100", "100"}, 26},
		{[]string{"-100", "-50"}, 4},
		{[]string{"4", "2"}, 0},
		{[]string{"0", "-1", "bit"}, 26},
		{[]string{"-1", "-1", "bit"}, 0},
		{[]string{"-2", "-2", "bit"}, 1},
		{[]string{"1", "6", "bit"}, 4},
		{[]string{"9", "9", "bit"}, 1},
		{[]string{"8", "15", "bit"}, 6},
		{[]string{"3", "20", "bit"}, 11},
		{[]string{"100", "200", "bit"}, 0},
		{[]string{"-9223372036854775808", "9223372036854775807"}, 26},
		{[]string{"-9223372036854775808", "9223372036854775807", "bit"}, 26},
		// Negative start after negative end counts 0 before the unit is
		// read.
		{[]string{"-1", "-2", "x"}, 0},
	} {
		x.expect(num(c.want), append([]string{"bitcount", "k"}, c.args...)...)
	}
	x.expect(errr(strErrSyntax), "bitcount", "k", "1")
	x.expect(errr(strErrSyntax), "bitcount", "k", "0", "1", "BOO")
	x.expect(errr(strErrSyntax), "bitcount", "k", "0", "1", "bit", "x")
	x.expect(errr(strErrNotInt), "bitcount", "k", "a", "b", "BOO")
	x.expect(errr(strErrNotInt), "bitcount", "k", "0", "b", "BOO")
	x.expect(errr(strErrNotInt), "bitcount", "k", "0", "1.0")
	x.expect(ok, "set", "e", "")
	x.expect(num(0), "bitcount", "e")
	x.expect(num(0), "bitcount", "e", "0", "0")
	x.expect(num(0), "bitcount", "e", "0", "-1", "bit")
}

func TestBitPos(t *testing.T) {
	x := newTester(t)
	x.expect(num(0), "bitpos", "missing", "0")
	x.expect(num(-1), "bitpos", "missing", "1")
	// An absent key answers before the range is read.
	x.expect(num(0), "bitpos", "missing", "0", "x", "y", "z", "w")
	x.expect(errr(strErrNotInt), "bitpos", "missing", "a")
	x.expect(errr("ERR The bit argument must be 1 or 0."), "bitpos", "missing", "2")
	x.expect(errr("ERR The bit argument must be 1 or 0."), "bitpos", "missing", "-1")

	x.expect(ok, "set", "k", "\xff\xf0\x00")
	x.expect(ok, "set", "z", "\x00\x00\x00")
	x.expect(ok, "set", "o", "\xff\xff\xff")
	for _, c := range []struct {
		key  string
		args []string
		want int64
	}{
		{"k", []string{"0"}, 12},
		{"k", []string{"1"}, 0},
		{"k", []string{"1", "2"}, -1},
		{"k", []string{"0", "2"}, 16},
		{"k", []string{"1", "1"}, 8},
		{"k", []string{"1", "-1"}, -1},
		{"k", []string{"1", "-2", "-1"}, 8},
		{"k", []string{"1", "1", "0"}, -1},
		{"k", []string{"0", "0", "0"}, -1},
		{"k", []string{"0", "0", "0", "BYTE"}, -1},
		{"k", []string{"0", "0", "1"}, 12},
		{"k", []string{"1", "7", "15", "bit"}, 7},
		{"k", []string{"1", "12", "-1", "bit"}, -1},
		{"k", []string{"0", "3", "11", "bit"}, -1},
		{"k", []string{"0", "3", "12", "bit"}, 12},
		{"k", []string{"0", "3", "-1", "BIT"}, 12},
		{"k", []string{"1", "-100", "-50"}, 0},
		{"k", []string{"0", "100"}, -1},
		{"k", []string{"1", "100"}, -1},
		{"z", []string{"0"}, 0},
		{"z", []string{"1"}, -1},
		{"z", []string{"0", "9", "-1", "bit"}, 9},
		{"z", []string{"1", "0", "-1", "bit"}, -1},
		// Looking for a 0 in ones: the bit after, unless an end is given.
		{"o", []string{"0"}, 24},
		{"o", []string{"0", "1"}, 24},
		{"o", []string{"0", "1", "-1"}, -1},
		{"o", []string{"0", "3", "-1", "bit"}, -1},
		{"o", []string{"0", "3", "20", "bit"}, -1},
		{"o", []string{"1", "3", "20", "bit"}, 3},
		{"o", []string{"1", "-9223372036854775808", "9223372036854775807", "bit"}, 0},
	} {
		x.expect(num(c.want), append([]string{"bitpos", c.key}, c.args...)...)
	}
	x.expect(errr(strErrNotInt), "bitpos", "k", "1", "a", "BOO")
	x.expect(errr(strErrNotInt), "bitpos", "z", "0", "9", "bit")
	x.expect(errr(strErrSyntax), "bitpos", "k", "1", "0", "a", "BOO")
	x.expect(errr(strErrNotInt), "bitpos", "k", "1", "0", "a", "bit")
	x.expect(errr(strErrSyntax), "bitpos", "k", "1", "0", "1", "bit", "x")
	x.expect(ok, "set", "e", "")
	x.expect(num(-1), "bitpos", "e", "0")
	x.expect(num(-1), "bitpos", "e", "1")
	x.expect(num(-1), "bitpos", "e", "0", "0", "-1", "bit")
}
