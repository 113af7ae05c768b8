package tcp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/domain"
)

// ErrInvalidOptions is returned (wrapped, with the offending field) by
// Options.Validate, New and SetPeer when a setting cannot work.
var ErrInvalidOptions = errors.New("tcp: invalid options")

// Defaults of Options, applied by EnsureDefaults to zero fields.
const (
	DefaultListenAddr         = "127.0.0.1:0"
	DefaultSendQueue          = 1024
	DefaultInboxSize          = 4096
	DefaultDialTimeout        = 3 * time.Second
	DefaultReadTimeout        = 10 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultBackoffMin         = 50 * time.Millisecond
	DefaultBackoffMax         = 2 * time.Second
	DefaultMaxFrameBytes      = 64 << 20
	DefaultSnapshotChunkBytes = 1 << 20
	DefaultMaxSnapshotBytes   = 1 << 30
	// DefaultMaxSpooledSnapshotBytes is MaxSnapshotBytes's default with a
	// SpoolDir: the image then costs disk, not memory, so the bound only
	// stops a runaway stream from filling the disk.
	DefaultMaxSpooledSnapshotBytes = 1 << 40
	DefaultMaxMessageBytes         = 1 << 30

	// MaxClusterIDLen bounds Options.ClusterID (it travels in the handshake).
	MaxClusterIDLen = 255
	// minFrameLimit is the smallest MaxFrameBytes accepted: room for the
	// handshake and an ordinary message.
	minFrameLimit = 4 << 10
)

// Options configure a Transport. The zero value of every field but ID works;
// each field's comment gives its default. New clones the Options, runs
// EnsureDefaults and then Validate.
type Options struct {
	// ID is this node's id. Required, non-zero.
	ID domain.NodeID
	// ClusterID names the cluster; a connection from a node configured with
	// another cluster id is rejected. Default "" (which is a cluster id like
	// any other: set it in production). At most MaxClusterIDLen bytes.
	ClusterID string
	// ClusterUUID is the cluster's UUID, made once when the cluster was
	// created (see adapters/datadir): it tells apart two clusters under
	// one name, such as a cluster and the one recreated after a lost
	// quorum. A connection from a node with another UUID is refused, and
	// the refusal logged with both. Default "" (a value like any other:
	// two nodes without a UUID accept each other). ClusterID and
	// ClusterUUID travel together in the handshake: at most
	// MaxClusterIDLen bytes with one separator byte between them, and
	// neither may contain a zero byte.
	ClusterUUID string
	// ListenAddr is the address to accept peer connections on. Default:
	// Peers[ID] if present, else "127.0.0.1:0" (an ephemeral port; see
	// Transport.Addr).
	ListenAddr string
	// Peers maps the other members' ids to their addresses (host:port).
	// This node's own id may appear (it then only sets the ListenAddr
	// default). Only peers listed here (or added by SetPeer) may connect.
	// Default: none.
	Peers map[domain.NodeID]string
	// SendQueue is the number of messages queued per peer; Send drops (and
	// counts) a message when its peer's queue is full. Default 1024.
	SendQueue int
	// InboxSize is the capacity of the Receive channel; a received message
	// that finds it full is dropped and counted. Default 4096.
	InboxSize int
	// DialTimeout bounds a dial plus the handshake that follows it, and, on
	// the accepting side, the wait for a new connection's handshake.
	// Default 3s.
	DialTimeout time.Duration
	// ReadTimeout is how long an inbound connection may stay silent before
	// it is dropped. Writers send a keep-alive frame after ReadTimeout/3 of
	// idleness, so a healthy idle connection never hits it: give every node
	// of a cluster the same ReadTimeout. Default 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds each batch of writes (each chunk of a snapshot).
	// Default 10s.
	WriteTimeout time.Duration
	// BackoffMin and BackoffMax bound the delay before redialing a peer: it
	// doubles after each failure from BackoffMin up to BackoffMax, with
	// jitter (a uniform draw from the upper half of the delay). Defaults
	// 50ms and 2s.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// JitterSeed seeds the backoff jitter (one math/rand/v2 PCG source per
	// peer, seeded with JitterSeed and the peer id). Default 0 means the
	// node id, which decorrelates nodes.
	JitterSeed uint64
	// MaxFrameBytes is the largest frame payload sent or accepted, checked
	// before anything is allocated. A message whose encoding is larger is
	// dropped by the sender and logged, except a MsgApp whose entry data
	// exceeds SnapshotChunkBytes: that one travels in chunks (see
	// MaxMessageBytes), as snapshot data does. Default 64 MiB, minimum
	// 4 KiB.
	MaxFrameBytes int
	// SnapshotChunkBytes is the size of the chunks snapshot data and large
	// MsgApps are sent in; a control message queued meanwhile goes out
	// between two chunks. Default 1 MiB; at most MaxFrameBytes.
	SnapshotChunkBytes int
	// MaxMessageBytes bounds the encoding of a MsgApp sent or received in
	// chunks (the receiver reassembles it in memory before delivering it):
	// it must exceed the largest entry Raft may carry. Default 1 GiB.
	MaxMessageBytes int64
	// MaxSnapshotBytes bounds the image of a MsgSnap (Snapshot.Data or
	// its file), sent or received: the receiver holds the image in memory
	// before delivering the message, or in a file of SpoolDir. Default
	// 1 GiB without a SpoolDir, 1 TiB with one.
	MaxSnapshotBytes int64
	// SpoolDir, if set, is the directory where received snapshot images
	// are written as their chunks arrive: the MsgSnap is delivered with
	// Snapshot.File naming the file, which then belongs to the receiver
	// of the message (it deletes it once installed or refused), so that
	// receiving a snapshot costs one chunk of memory whatever its size. A
	// stream that breaks removes its partial file. New creates the
	// directory and deletes the files named seshat-snapshot-*.in a
	// previous run left (only those: the node may write the images it
	// sends to the same directory). Default "": images are reassembled in
	// memory and delivered in Snapshot.Data.
	SpoolDir string
	// PeerSecret, if set, is the secret every node of the cluster shares:
	// a connection is accepted (and a dialed peer trusted) only after both
	// sides prove they know it in the handshake, by a challenge-response
	// that never sends it (see the package documentation). At least
	// MinPeerSecretLen bytes. Default: none, and then any process that
	// reaches the listener and knows the cluster id and a member's id is
	// taken for that member.
	PeerSecret []byte
	// TLS, if set, runs every peer connection over mutual TLS with this
	// configuration, in both roles, before the handshake: it must carry
	// this node's certificate (Certificates, GetCertificate or
	// GetConfigForClient for accepting, GetClientCertificate or
	// Certificates for dialing) and, to authenticate peers, require and
	// verify theirs (ClientAuth tls.RequireAndVerifyClientCert with
	// ClientCAs, and RootCAs or VerifyConnection). A dial verifies the
	// peer's certificate against the host of its address unless
	// ServerName is set. Shared, not copied, by Clone. Default: plain TCP.
	TLS *tls.Config
	// Logger receives the transport's logs. Default: zerolog.Nop().
	Logger *zerolog.Logger
}

// Clone returns a copy of o that shares nothing mutable with it (the Peers
// map and the PeerSecret are copied; the Logger is shared).
func (o Options) Clone() Options {
	c := o
	c.Peers = maps.Clone(o.Peers)
	c.PeerSecret = bytes.Clone(o.PeerSecret)
	return c
}

// EnsureDefaults sets every zero field to its default.
func (o *Options) EnsureDefaults() {
	if o.Peers == nil {
		o.Peers = map[domain.NodeID]string{}
	}
	if o.ListenAddr == "" {
		if a, ok := o.Peers[o.ID]; ok && a != "" {
			o.ListenAddr = a
		} else {
			o.ListenAddr = DefaultListenAddr
		}
	}
	setDefault(&o.SendQueue, DefaultSendQueue)
	setDefault(&o.InboxSize, DefaultInboxSize)
	setDefault(&o.DialTimeout, DefaultDialTimeout)
	setDefault(&o.ReadTimeout, DefaultReadTimeout)
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.BackoffMin, DefaultBackoffMin)
	setDefault(&o.BackoffMax, DefaultBackoffMax)
	setDefault(&o.MaxFrameBytes, DefaultMaxFrameBytes)
	setDefault(&o.SnapshotChunkBytes, min(DefaultSnapshotChunkBytes, o.MaxFrameBytes))
	if o.SpoolDir != "" {
		setDefault(&o.MaxSnapshotBytes, DefaultMaxSpooledSnapshotBytes)
	} else {
		setDefault(&o.MaxSnapshotBytes, DefaultMaxSnapshotBytes)
	}
	setDefault(&o.MaxMessageBytes, DefaultMaxMessageBytes)
	if o.JitterSeed == 0 {
		o.JitterSeed = uint64(o.ID)
	}
	if o.Logger == nil {
		nop := zerolog.Nop()
		o.Logger = &nop
	}
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate reports the first setting that cannot work, wrapping
// ErrInvalidOptions. Run it after EnsureDefaults.
func (o *Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.ID == domain.None:
		return bad("ID must be non-zero")
	case len(wireCluster(o.ClusterID, o.ClusterUUID)) > MaxClusterIDLen:
		return bad("ClusterID and ClusterUUID are %d bytes together, more than %d", len(wireCluster(o.ClusterID, o.ClusterUUID)), MaxClusterIDLen)
	case strings.IndexByte(o.ClusterID, uuidSep) >= 0 || strings.IndexByte(o.ClusterUUID, uuidSep) >= 0:
		return bad("ClusterID or ClusterUUID contains a zero byte")
	case o.SendQueue < 0:
		return bad("SendQueue %d is negative", o.SendQueue)
	case o.InboxSize < 0:
		return bad("InboxSize %d is negative", o.InboxSize)
	case o.DialTimeout < 0 || o.ReadTimeout < 0 || o.WriteTimeout < 0:
		return bad("negative timeout (dial %v, read %v, write %v)", o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
	case o.BackoffMin < 0 || o.BackoffMax < o.BackoffMin:
		return bad("backoff bounds [%v, %v] are not ordered", o.BackoffMin, o.BackoffMax)
	case o.MaxFrameBytes < minFrameLimit || uint64(o.MaxFrameBytes) > maxFrameLimit:
		return bad("MaxFrameBytes %d outside [%d, %d]", o.MaxFrameBytes, minFrameLimit, uint64(maxFrameLimit))
	case o.SnapshotChunkBytes < 1 || o.SnapshotChunkBytes > o.MaxFrameBytes:
		return bad("SnapshotChunkBytes %d outside [1, MaxFrameBytes=%d]", o.SnapshotChunkBytes, o.MaxFrameBytes)
	case o.MaxSnapshotBytes < 0:
		return bad("MaxSnapshotBytes %d is negative", o.MaxSnapshotBytes)
	case o.MaxMessageBytes < 0:
		return bad("MaxMessageBytes %d is negative", o.MaxMessageBytes)
	case len(o.PeerSecret) > 0 && len(o.PeerSecret) < MinPeerSecretLen:
		return bad("PeerSecret is %d bytes, fewer than %d", len(o.PeerSecret), MinPeerSecretLen)
	}
	for id, addr := range o.Peers {
		if id == domain.None {
			return bad("Peers names node 0")
		}
		if addr == "" {
			return bad("Peers[%d] has no address", id)
		}
	}
	return nil
}
