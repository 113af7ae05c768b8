package relay

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/domain"
)

// Options configures a Client. The zero value works.
type Options struct {
	// Conns is the number of connections kept to the leader; batches are
	// spread over them round-robin and pipelined on each. Default 1: the
	// leader runs the relayed batches pipelined on one connection as one
	// batch, so one connection gives the largest groups (one proposal, one
	// append for all of them), and on a 2-core machine it measured the
	// least CPU per relayed write (BENCHMARKS.md: about 25 us over the
	// leader's own, against 130 us with 4 connections) and the best rate.
	// More help only once the leader's one goroutine per connection is
	// the limit, or to keep a huge batch from delaying the others.
	Conns int
	// DialTimeout bounds dialing the leader and the hello that follows.
	// Default 1s.
	DialTimeout time.Duration
	// Password is sent with AUTH on every connection: the leader's
	// requirepass (the same on every node). Default none.
	Password string
	// MaxReplyBytes bounds the bulk reply of one batch. Default
	// 4*domain.MaxValueSize.
	MaxReplyBytes int64
	// Logger receives connection events. Default: discard.
	Logger *zerolog.Logger
}

// Defaults of Options' fields.
const (
	DefaultConns       = 1
	DefaultDialTimeout = time.Second
)

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Conns == 0 {
		o.Conns = DefaultConns
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.MaxReplyBytes == 0 {
		o.MaxReplyBytes = 4 * domain.MaxValueSize
	}
	if o.Logger == nil {
		nop := zerolog.Nop()
		o.Logger = &nop
	}
}

// Validate reports options a Client cannot run with.
func (o *Options) Validate() error {
	switch {
	case o.Conns < 1:
		return fmt.Errorf("relay: options: Conns %d < 1", o.Conns)
	case o.DialTimeout < 0:
		return fmt.Errorf("relay: options: DialTimeout %v < 0", o.DialTimeout)
	case o.MaxReplyBytes < 1:
		return errors.New("relay: options: MaxReplyBytes < 1")
	}
	return nil
}
