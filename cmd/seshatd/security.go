package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/adapters/resp"
	"github.com/seshat-kv/seshat/adapters/tcp"
)

// securityConfig is what the TLS and peer authentication flags say.
type securityConfig struct {
	// peerSecret authenticates peers to each other (tcp.Options.PeerSecret);
	// empty: no authentication.
	peerSecret []byte
	// tlsListen is the address of the TLS client listener; empty: none.
	tlsListen string
	// clientTLS are the TLS client listener's files, peerTLS the peers'
	// (mutual TLS between nodes; cert empty: none).
	clientTLS, peerTLS certFiles
}

// certFiles name a certificate, its key and the CA that the other side's
// certificate must chain to, and whether the other side must show one.
type certFiles struct {
	cert, key, ca string
	auth          tls.ClientAuthType
	flag          string // the flags' prefix, for errors: "--tls" or "--peer-tls"
}

// securityFlags are the flags behind securityConfig, registered on the
// daemon's flag set (so SESHAT_<FLAG> works for them too).
type securityFlags struct {
	peerSecret, peerSecretFile               *string
	tlsPort, tlsCert, tlsKey, tlsCA, tlsAuth *string
	peerCert, peerKey, peerCA                *string
}

func addSecurityFlags(fs *flag.FlagSet) *securityFlags {
	return &securityFlags{
		peerSecret:     fs.String("peer-secret", "", "secret shared by every node; peers prove they know it before any Raft message is accepted (prefer --peer-secret-file or SESHAT_PEER_SECRET)"),
		peerSecretFile: fs.String("peer-secret-file", "", "file holding the peer secret (surrounding whitespace ignored)"),
		tlsPort:        fs.String("tls-port", "", "TLS client address: host:port, or a port on --listen's host; empty or 0: no TLS listener"),
		tlsCert:        fs.String("tls-cert", "", "PEM certificate (chain) of the TLS client listener; reloaded on SIGHUP and when the file changes"),
		tlsKey:         fs.String("tls-key", "", "PEM private key of --tls-cert"),
		tlsCA:          fs.String("tls-ca", "", "PEM CA certificates that client certificates must chain to"),
		tlsAuth:        fs.String("tls-auth-clients", "yes", "client certificates: yes (required), optional (checked if sent) or no"),
		peerCert:       fs.String("peer-tls-cert", "", "PEM certificate of this node for mutual TLS between peers (needs --peer-tls-key and --peer-tls-ca); reloaded like --tls-cert"),
		peerKey:        fs.String("peer-tls-key", "", "PEM private key of --peer-tls-cert"),
		peerCA:         fs.String("peer-tls-ca", "", "PEM CA certificates that peers' certificates must chain to"),
	}
}

// resolve checks the flags and builds the configuration. listen is the
// plain client address ("" when disabled).
func (f *securityFlags) resolve(listen string) (securityConfig, error) {
	var c securityConfig
	switch {
	case *f.peerSecret != "" && *f.peerSecretFile != "":
		return c, errors.New("--peer-secret and --peer-secret-file are both set: choose one")
	case *f.peerSecretFile != "":
		b, err := os.ReadFile(*f.peerSecretFile)
		if err != nil {
			return c, fmt.Errorf("--peer-secret-file: %v", err)
		}
		c.peerSecret = bytes.TrimSpace(b)
		if len(c.peerSecret) == 0 {
			return c, fmt.Errorf("--peer-secret-file %s is empty", *f.peerSecretFile)
		}
	default:
		c.peerSecret = []byte(*f.peerSecret)
	}
	if n := len(c.peerSecret); n > 0 && n < tcp.MinPeerSecretLen {
		return c, fmt.Errorf("the peer secret is %d bytes; use at least %d (for example: head -c 32 /dev/urandom | base64)", n, tcp.MinPeerSecretLen)
	}

	c.peerTLS = certFiles{cert: *f.peerCert, key: *f.peerKey, ca: *f.peerCA, auth: tls.RequireAndVerifyClientCert, flag: "--peer-tls"}
	if p := c.peerTLS; (p.cert != "" || p.key != "" || p.ca != "") && (p.cert == "" || p.key == "" || p.ca == "") {
		return c, errors.New("mutual TLS between peers needs all of --peer-tls-cert, --peer-tls-key and --peer-tls-ca")
	}

	c.clientTLS = certFiles{cert: *f.tlsCert, key: *f.tlsKey, ca: *f.tlsCA, flag: "--tls"}
	switch *f.tlsAuth {
	case "yes":
		c.clientTLS.auth = tls.RequireAndVerifyClientCert
	case "optional":
		c.clientTLS.auth = tls.VerifyClientCertIfGiven
	case "no":
		c.clientTLS.auth = tls.NoClientCert
	default:
		return c, fmt.Errorf("--tls-auth-clients %q: want yes, optional or no", *f.tlsAuth)
	}
	var err error
	if c.tlsListen, err = tlsAddr(*f.tlsPort, listen); err != nil {
		return c, err
	}
	ct := c.clientTLS
	if c.tlsListen == "" {
		if ct.cert != "" || ct.key != "" || ct.ca != "" {
			return c, errors.New("--tls-cert, --tls-key and --tls-ca need --tls-port")
		}
		return c, nil
	}
	switch {
	case ct.cert == "" || ct.key == "":
		return c, errors.New("--tls-port needs --tls-cert and --tls-key")
	case ct.ca == "" && ct.auth != tls.NoClientCert:
		return c, fmt.Errorf("--tls-auth-clients %s needs --tls-ca (or --tls-auth-clients no)", *f.tlsAuth)
	}
	return c, nil
}

// clientListenDisabled reports whether a --listen or --tls-port value turns
// the listener off, as Redis's "port 0".
func clientListenDisabled(v string) bool { return v == "" || v == "0" }

// tlsAddr turns --tls-port into an address: host:port as given, or a bare
// port on --listen's host (127.0.0.1 without --listen).
func tlsAddr(port, listen string) (string, error) {
	if clientListenDisabled(port) {
		return "", nil
	}
	if _, _, err := net.SplitHostPort(port); err == nil {
		return port, nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("--tls-port %q: want host:port or a port number", port)
	}
	host := "127.0.0.1"
	if listen != "" {
		if h, _, err := net.SplitHostPort(listen); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port), nil
}

// clientListeners are the client-facing sockets, opened before anything
// else so that an address in use is a configuration error.
type clientListeners struct {
	plain, tls net.Listener // either may be nil, not both
	certs      *certReloader
}

func listenClients(cfg config) (*clientListeners, error) {
	l := &clientListeners{}
	var err error
	if cfg.listen != "" {
		if l.plain, err = net.Listen("tcp", cfg.listen); err != nil {
			return nil, badConfig("--listen %s: %v", cfg.listen, err)
		}
	}
	if cfg.sec.tlsListen != "" {
		if l.certs, err = newCertReloader(cfg.sec.clientTLS); err != nil {
			l.close()
			return nil, badConfig("%v", err)
		}
		if l.tls, err = net.Listen("tcp", cfg.sec.tlsListen); err != nil {
			l.close()
			return nil, badConfig("--tls-port %s: %v", cfg.sec.tlsListen, err)
		}
	}
	return l, nil
}

func (l *clientListeners) close() {
	for _, ln := range []net.Listener{l.plain, l.tls} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// serveClients serves srv on the listeners.
func serveClients(srv *resp.Server, l *clientListeners) {
	if l.plain != nil {
		srv.Serve(l.plain)
	}
	if l.tls != nil {
		srv.ServeTLS(l.tls, l.certs.serverConfig())
	}
}

// peerTLS returns the peers' certificate holder and the transport's TLS
// configuration, or nils without --peer-tls-*.
func peerTLS(cfg config) (*certReloader, *tls.Config, error) {
	if cfg.sec.peerTLS.cert == "" {
		return nil, nil, nil
	}
	r, err := newCertReloader(cfg.sec.peerTLS)
	if err != nil {
		return nil, nil, badConfig("%v", err)
	}
	return r, r.peerConfig(), nil
}

// logFields adds the listeners' addresses to a log event.
func (l *clientListeners) logFields(ev *zerolog.Event) *zerolog.Event {
	if l.plain != nil {
		ev = ev.Str("listen", l.plain.Addr().String())
	}
	if l.tls != nil {
		ev = ev.Str("tls_listen", l.tls.Addr().String())
	}
	return ev
}

// warnInsecure logs, once at start, what the configuration leaves open.
func warnInsecure(log zerolog.Logger, cfg config) {
	if len(cfg.sec.peerSecret) == 0 && cfg.sec.peerTLS.cert == "" && len(cfg.cluster) > 1 {
		log.Warn().Msg("no --peer-secret or --peer-tls-*: peers are not authenticated, so any process that can reach the peer port and knows the cluster id can send Raft messages as a member; set the same --peer-secret on every node (or peer certificates) outside a trusted network")
	}
}

// certPollInterval is how often the certificate files are checked for a
// change (SIGHUP reloads at once).
const certPollInterval = time.Second

// certReloader holds a TLS configuration, rebuilt from the certificate,
// key and CA files on SIGHUP and when any of them changes on disk. New
// connections get the newest; a failed reload (a half-written file, a key
// that does not match) keeps the previous one and logs why.
type certReloader struct {
	files certFiles
	cur   atomic.Pointer[tls.Config]
	stamp string // the files' sizes and times at the last load attempt
}

func newCertReloader(files certFiles) (*certReloader, error) {
	r := &certReloader{files: files}
	r.stamp = r.fileStamp()
	cfg, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(cfg)
	return r, nil
}

// load reads the files and builds a server configuration.
func (r *certReloader) load() (*tls.Config, error) {
	f := r.files
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("%s-cert %s / %s-key %s: %v", f.flag, f.cert, f.flag, f.key, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, ClientAuth: f.auth}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("%s-ca: %v", f.flag, err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s-ca %s holds no PEM certificate", f.flag, f.ca)
		}
	}
	return cfg, nil
}

// serverConfig is the configuration to serve with: each handshake takes
// the newest loaded one.
func (r *certReloader) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.cur.Load(), nil
		},
	}
}

// peerConfig is serverConfig for accepting peers, and for dialing them it
// shows the newest certificate and verifies the peer's against the newest
// CA and the name dialed (crypto/tls verifies only against fixed RootCAs,
// so its own check is replaced by VerifyConnection's).
func (r *certReloader) peerConfig() *tls.Config {
	cfg := r.serverConfig()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &r.cur.Load().Certificates[0], nil
	}
	cfg.InsecureSkipVerify = true // VerifyConnection verifies
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("peer showed no certificate")
		}
		opts := x509.VerifyOptions{Roots: r.cur.Load().ClientCAs, DNSName: cs.ServerName,
			Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
	return cfg
}

func (r *certReloader) fileStamp() string {
	var b []byte
	for _, name := range []string{r.files.cert, r.files.key, r.files.ca} {
		if fi, err := os.Stat(name); err == nil {
			b = fmt.Appendf(b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			b = append(b, "-;"...)
		}
	}
	return string(b)
}

// reload loads the files again and, if they make a valid configuration,
// serves it to new connections.
func (r *certReloader) reload(log zerolog.Logger, why string) {
	log = log.With().Str("files", r.files.flag+"-*").Str("trigger", why).Logger()
	cfg, err := r.load()
	if err != nil {
		log.Warn().Err(err).Msg("TLS certificates not reloaded; serving the previous ones")
		return
	}
	r.cur.Store(cfg)
	ev := log.Info()
	if leaf := cfg.Certificates[0].Leaf; leaf != nil {
		ev = ev.Str("subject", leaf.Subject.String()).Time("not_after", leaf.NotAfter)
	}
	ev.Msg("TLS certificates reloaded")
}

// catchHangup catches SIGHUP from now on, so that a reload signal never
// kills the node (its default action), with or without TLS files.
func catchHangup() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// watchCerts reloads each holder (nil ones skipped) on SIGHUP (from
// catchHangup's channel) and when its files change, until the returned
// function is called.
func watchCerts(log zerolog.Logger, hup chan os.Signal, holders ...*certReloader) (stop func()) {
	holders = slices.DeleteFunc(holders, func(r *certReloader) bool { return r == nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		tick := time.NewTicker(certPollInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if len(holders) == 0 {
					log.Info().Msg("SIGHUP: no TLS files to reload")
				}
				for _, r := range holders {
					r.stamp = r.fileStamp()
					r.reload(log, "SIGHUP")
				}
			case <-tick.C:
				for _, r := range holders {
					if st := r.fileStamp(); st != r.stamp {
						r.stamp = st
						r.reload(log, "file change")
					}
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}
