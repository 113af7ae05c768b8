package resp

import (
	"strconv"

	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
)

// writeValue writes r to conn in RESP2, or in RESP3 if resp3. redcon
// writes RESP2 only: the RESP3 frames (null, map, double, verbatim) are
// written raw.
func writeValue(conn redcon.Conn, resp3 bool, r domain.Reply) {
	switch r.Kind {
	case domain.ReplyNil:
		if resp3 {
			conn.WriteRaw([]byte("_\r\n"))
		} else {
			conn.WriteNull()
		}
	case domain.ReplyNilArray:
		if resp3 {
			conn.WriteRaw([]byte("_\r\n"))
		} else {
			conn.WriteRaw([]byte("*-1\r\n"))
		}
	case domain.ReplyStatus:
		conn.WriteString(r.Str)
	case domain.ReplyError:
		conn.WriteError(r.Str)
	case domain.ReplyInt:
		conn.WriteInt64(r.Int)
	case domain.ReplyBulk:
		writeBulk(conn, r.Bulk)
	case domain.ReplyDouble:
		if resp3 {
			conn.WriteRaw([]byte("," + r.Str + "\r\n"))
		} else {
			conn.WriteBulkString(r.Str)
		}
	case domain.ReplyVerbatim:
		if resp3 {
			b := make([]byte, 0, len(r.Bulk)+24)
			b = append(b, '=')
			b = strconv.AppendInt(b, int64(len(r.Bulk)+4), 10)
			b = append(b, "\r\ntxt:"...)
			b = append(b, r.Bulk...)
			b = append(b, "\r\n"...)
			conn.WriteRaw(b)
		} else {
			conn.WriteBulk(r.Bulk)
		}
	case domain.ReplyArray:
		conn.WriteArray(len(r.Array))
		for _, e := range r.Array {
			writeValue(conn, resp3, e)
		}
	case domain.ReplyMap:
		if resp3 {
			conn.WriteRaw([]byte("%" + strconv.Itoa(len(r.Array)/2) + "\r\n"))
		} else {
			conn.WriteArray(len(r.Array))
		}
		for _, e := range r.Array {
			writeValue(conn, resp3, e)
		}
	default:
		conn.WriteError("ERR internal error: reply kind " + strconv.Itoa(int(r.Kind)))
	}
}
