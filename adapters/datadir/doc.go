// Package datadir keeps a node's identity in its data directory: the
// cluster it belongs to (a random UUID made once, when the cluster is
// created) and its node id. seshatd reads it before anything else: a data
// dir without one is a node that was never a member (or whose data was
// lost), which must be told to create a cluster (--bootstrap) or to join
// one, and never bootstraps or votes on its own.
//
// The identity is one small text file, FileName, that an operator can read:
//
//	seshat identity v1
//	cluster-uuid 0f8fad5b-d9cb-469f-a165-70867728950e
//	node-id 3
//	crc32c 1a2b3c4d
//
// The last line is the CRC-32C (Castagnoli) of every byte before it. Save
// replaces the file atomically (temp file, fsync, rename, fsync of the
// directory), so a crash leaves the old identity or the new one, never a
// mix. Load tells apart "no identity" (an error wrapping
// domain.ErrNoIdentity) from a damaged one (domain.ErrCorrupt): a corrupt
// file is never taken for an absent one, since that would let a member
// re-create itself.
//
// The package imports only domain and the standard library.
package datadir
