package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/adapters/backupfile"
	"github.com/seshat-kv/seshat/domain"
)

// subcommands are the seshatd commands other than running a node, by
// their first argument.
var subcommands = map[string]func(args []string, env func(string) string) error{
	"backup":  runBackup,
	"restore": runRestore,
}

func firstArg(args []string) string {
	if len(args) < 2 {
		return ""
	}
	return args[1]
}

// exitSub exits with a subcommand's outcome: 0, 2 for a usage error (one
// line on stderr), 1 for a failure.
func exitSub(err error) {
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, new(usageError)):
		fmt.Fprintf(os.Stderr, "seshatd: %v\n", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "seshatd: %v\n", err)
	os.Exit(1)
}

// toolLogger is the logger of a subcommand: console lines on stderr.
func toolLogger(component string) zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000", NoColor: true}).
		With().Timestamp().Str("component", component).Logger()
}

// subFlags returns a flag set for subcommand name; parseSub parses args
// into it, each flag falling back to SESHAT_<NAME> from env, and prints
// usage and the flags for --help.
func subFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("seshatd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // parseSub prints the usage, for --help only
	return fs
}

func parseSub(fs *flag.FlagSet, usage string, args []string, env func(string) string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stdout, "Usage: %s %s\n", fs.Name(), usage)
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return err
		}
		return badConfig("%v", err)
	}
	if fs.NArg() > 0 {
		return badConfig("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "SESHAT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := env(name); v != "" && !set[f.Name] && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = badConfig("%s=%q: %v", name, v, e)
			}
		}
	})
	return err
}

// backupProgressEvery is how often a long backup logs its progress.
const backupProgressEvery = 5 * time.Second

// runBackup is `seshatd backup --from host:port --out FILE`: it asks a
// node for a consistent image (SESHAT.BACKUP) and writes it to FILE in
// the backup file format, through a temporary file renamed into place
// once it is complete, synced and checked.
func runBackup(args []string, env func(string) string) error {
	fs := subFlags("backup")
	from := fs.String("from", "", "client (Redis protocol) address of any member of the cluster")
	out := fs.String("out", "", "file to write the backup to (must not exist)")
	pass := fs.String("password", "", "the cluster's requirepass, if it has one (also SESHAT_REQUIREPASS)")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole backup")
	var tc backupTLS
	fs.BoolVar(&tc.on, "tls", false, "connect with TLS (--from is then the node's --tls-port)")
	fs.StringVar(&tc.ca, "tls-ca", "", "with --tls: PEM CA certificates the node's certificate must chain to (default: the system's)")
	fs.StringVar(&tc.cert, "tls-cert", "", "with --tls: PEM client certificate, if the node asks for one")
	fs.StringVar(&tc.key, "tls-key", "", "with --tls: PEM private key of --tls-cert")
	if err := parseSub(fs, "--from host:port --out FILE [--password P] [--tls --tls-ca FILE [--tls-cert FILE --tls-key FILE]]", args, env); err != nil {
		return err
	}
	if *pass == "" {
		*pass = env("SESHAT_REQUIREPASS")
	}
	switch {
	case *from == "":
		return badConfig("backup: --from host:port is required")
	case *out == "":
		return badConfig("backup: --out FILE is required")
	}
	if _, err := os.Lstat(*out); err == nil {
		return badConfig("backup: %s exists: remove it or choose another file", *out)
	}
	log := toolLogger("backup")
	start := time.Now()
	dial, err := tc.dialer(*from)
	if err != nil {
		return err
	}
	info, err := backupTo(dial, *from, *out, *pass, *timeout, log)
	if err != nil {
		return err
	}
	log.Info().Str("file", *out).Int64("bytes", info.BodyLen).Uint64("index", uint64(info.Meta.Index)).
		Uint64("term", uint64(info.Meta.Term)).Uint64("from_node", uint64(info.From)).
		Dur("elapsed", time.Since(start)).Msg("backup written and checked")
	return nil
}

// backupTLS is seshatd backup's TLS settings.
type backupTLS struct {
	on            bool
	ca, cert, key string
}

// dialer returns how to connect to addr: plain TCP, or TLS.
func (b backupTLS) dialer(addr string) (func() (net.Conn, error), error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if !b.on {
		if b.ca != "" || b.cert != "" {
			return nil, badConfig("backup: --tls-ca and --tls-cert need --tls")
		}
		return func() (net.Conn, error) { return d.Dial("tcp", addr) }, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, badConfig("backup: --from %s: %v", addr, err)
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if b.ca != "" {
		pem, err := os.ReadFile(b.ca)
		if err != nil {
			return nil, badConfig("backup: --tls-ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, badConfig("backup: --tls-ca %s holds no PEM certificate", b.ca)
		}
	}
	if b.cert != "" || b.key != "" {
		pair, err := tls.LoadX509KeyPair(b.cert, b.key)
		if err != nil {
			return nil, badConfig("backup: --tls-cert/--tls-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return func() (net.Conn, error) { return tls.DialWithDialer(d, "tcp", addr, cfg) }, nil
}

func backupTo(dial func() (net.Conn, error), from, out, pass string, timeout time.Duration, log zerolog.Logger) (backupfile.Info, error) {
	conn, err := dial()
	if err != nil {
		return backupfile.Info{}, fmt.Errorf("backup: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReaderSize(conn, 64<<10)
	if pass != "" {
		if err := respCall(conn, r, "AUTH", pass); err != nil {
			return backupfile.Info{}, fmt.Errorf("backup: AUTH: %w", err)
		}
	}
	if _, err := io.WriteString(conn, respCommand("SESHAT.BACKUP")); err != nil {
		return backupfile.Info{}, fmt.Errorf("backup: %w", err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".partial-*")
	if err != nil {
		return backupfile.Info{}, fmt.Errorf("backup: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	start := time.Now()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	fw, err := backupfile.NewWriter(bw, start)
	if err != nil {
		return backupfile.Info{}, err
	}
	log.Info().Str("from", from).Str("file", out).Msg("backup started")
	last := start
	var meta domain.SnapshotMeta
	var node domain.NodeID
	for {
		kind, line, err := respLine(r)
		if err != nil {
			return backupfile.Info{}, fmt.Errorf("backup: from %s after %d bytes: %w", from, fw.BodyLen(), err)
		}
		if kind == '$' {
			if err := copyBulk(fw, r, line); err != nil {
				return backupfile.Info{}, fmt.Errorf("backup: from %s after %d bytes: %w", from, fw.BodyLen(), err)
			}
			if now := time.Now(); now.Sub(last) >= backupProgressEvery {
				last = now
				log.Info().Int64("bytes", fw.BodyLen()).Dur("elapsed", now.Sub(start)).Msg("backup: receiving")
			}
			continue
		}
		if kind == '-' {
			return backupfile.Info{}, fmt.Errorf("backup: %s answered: %s", from, line)
		}
		if kind != '*' || line != "5" {
			return backupfile.Info{}, fmt.Errorf("backup: %s answered %c%s, not a backup stream (is it a seshatd?)", from, kind, line)
		}
		if meta, node, err = readBackupEnd(r, fw.BodyLen()); err != nil {
			return backupfile.Info{}, fmt.Errorf("backup: from %s: %w", from, err)
		}
		break
	}
	if err := fw.Close(meta, node); err != nil {
		return backupfile.Info{}, err
	}
	if err := bw.Flush(); err != nil {
		return backupfile.Info{}, fmt.Errorf("backup: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return backupfile.Info{}, fmt.Errorf("backup: sync %s: %w", tmp.Name(), err)
	}
	// Read back what is on disk before it takes the name.
	size, err := tmp.Seek(0, io.SeekEnd)
	if err != nil {
		return backupfile.Info{}, fmt.Errorf("backup: %w", err)
	}
	info, _, err := backupfile.Open(tmp, size)
	if err != nil {
		return backupfile.Info{}, fmt.Errorf("backup: the file written does not check out: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return backupfile.Info{}, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return backupfile.Info{}, fmt.Errorf("backup: %w", err)
	}
	done = true
	return info, syncDir(filepath.Dir(out))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readBackupEnd reads the rest of SESHAT.BACKUP's final array: index,
// term, membership, image bytes (checked against got), node id.
func readBackupEnd(r *bufio.Reader, got int64) (domain.SnapshotMeta, domain.NodeID, error) {
	var nums []uint64 // index, term, image bytes, node id
	var mem []byte
	for i := range 5 {
		kind, line, err := respLine(r)
		if err != nil {
			return domain.SnapshotMeta{}, 0, err
		}
		if i == 2 {
			if kind != '$' {
				return domain.SnapshotMeta{}, 0, fmt.Errorf("bad membership in the final reply")
			}
			var b bytesBuf
			if err := copyBulk(&b, r, line); err != nil {
				return domain.SnapshotMeta{}, 0, err
			}
			mem = b
			continue
		}
		n, err := strconv.ParseUint(line, 10, 64)
		if kind != ':' || err != nil {
			return domain.SnapshotMeta{}, 0, fmt.Errorf("bad field %d in the final reply: %c%s", i, kind, line)
		}
		nums = append(nums, n)
	}
	m, err := domain.DecodeMembership(mem)
	if err != nil {
		return domain.SnapshotMeta{}, 0, err
	}
	if int64(nums[2]) != got {
		return domain.SnapshotMeta{}, 0, fmt.Errorf("the server sent %d bytes of image but says %d", got, nums[2])
	}
	return domain.SnapshotMeta{Index: domain.Index(nums[0]), Term: domain.Term(nums[1]), Membership: m}, domain.NodeID(nums[3]), nil
}

// bytesBuf is an io.Writer collecting bytes (small replies only).
type bytesBuf []byte

func (b *bytesBuf) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

// respCommand encodes a command as a RESP array of bulk strings.
func respCommand(args ...string) string {
	s := "*" + strconv.Itoa(len(args)) + "\r\n"
	for _, a := range args {
		s += "$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n"
	}
	return s
}

// respCall sends a command and expects +OK.
func respCall(w io.Writer, r *bufio.Reader, args ...string) error {
	if _, err := io.WriteString(w, respCommand(args...)); err != nil {
		return err
	}
	kind, line, err := respLine(r)
	if err != nil {
		return err
	}
	if kind != '+' {
		return fmt.Errorf("%c%s", kind, line)
	}
	return nil
}

// respLine reads one RESP header line: its type byte and the rest.
func respLine(r *bufio.Reader) (byte, string, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("connection closed: %w", io.ErrUnexpectedEOF)
		}
		return 0, "", err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, "", fmt.Errorf("malformed reply line %q", line)
	}
	return line[0], string(line[1 : len(line)-2]), nil
}

// copyBulk copies a bulk string of the length in header to w, streaming.
func copyBulk(w io.Writer, r *bufio.Reader, header string) error {
	n, err := strconv.ParseInt(header, 10, 64)
	if err != nil || n < 0 || n > 64<<20 {
		return fmt.Errorf("bad bulk length %q", header)
	}
	if _, err := io.CopyN(w, r, n); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("connection closed: %w", io.ErrUnexpectedEOF)
		}
		return err
	}
	var crlf [2]byte
	if _, err := io.ReadFull(r, crlf[:]); err != nil || crlf != [2]byte{'\r', '\n'} {
		return fmt.Errorf("bulk not ended by CRLF")
	}
	return nil
}
