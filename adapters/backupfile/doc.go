// Package backupfile is the format of a Seshat backup file: a state
// machine's snapshot stream (as ports.StateMachine.Snapshot writes it)
// framed by a header and a trailer, and checksummed as a whole.
//
//	header   magic "SESHATBK" (8) | format version (4, big endian)
//	         | created at, Unix ms (8)
//	body     the snapshot stream, body-length bytes
//	trailer  applied index (8) | term (8) | body length (8)
//	         | source node id (8) | membership length (4) | membership
//	         (domain.EncodeMembership) | trailer length (4) | "SESHATND" (8)
//	sum      SHA-256 of every byte before it (32)
//
// The snapshot's metadata travels in the trailer, not the header, because
// a state machine returns it only once the stream is written: the file is
// produced in one pass with bounded memory, and read back from its end.
// The header comes first so that a file that is not a backup, or one from
// a newer format, is refused before anything else is read.
//
// Open checks everything (magic, version, trailer, lengths, and the whole
// file's SHA-256) before it returns, so a caller that restores only what
// Open accepted never writes anything from a corrupt or truncated file.
// Every failure wraps domain.ErrCorrupt, but for a version from the future,
// which wraps ErrVersion.
package backupfile
