package tcp

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
)

// serverTLS runs the TLS handshake of an accepted connection when
// Options.TLS is set, and returns the connection to speak on (conn itself
// without TLS). A failure wraps errAuth: the peer could not show a
// certificate this node trusts (or did not speak TLS).
func (t *Transport) serverTLS(ctx context.Context, conn net.Conn) (net.Conn, error) {
	if t.opts.TLS == nil {
		return conn, nil
	}
	tc := tls.Server(conn, t.opts.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tcp: TLS handshake: %w: %w", errAuth, err)
	}
	return tc, nil
}

// clientTLS is serverTLS for a dialed connection to addr: the peer's
// certificate must name addr's host, unless Options.TLS.ServerName says
// otherwise.
func (t *Transport) clientTLS(ctx context.Context, conn net.Conn, addr string) (net.Conn, error) {
	if t.opts.TLS == nil {
		return conn, nil
	}
	cfg := t.opts.TLS
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tcp: TLS handshake with %s: %w: %w", addr, errAuth, err)
	}
	return tc, nil
}
