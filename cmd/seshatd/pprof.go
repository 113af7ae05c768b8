package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// pprofEnv names the address of a Go profiling endpoint (net/http/pprof's
// /debug/pprof/ handlers), for profiling a node under load:
//
//	SESHAT_PPROF_LISTEN=127.0.0.1:20100 seshatd ...
//	go tool pprof -seconds 10 http://127.0.0.1:20100/debug/pprof/profile
//
// It is a debugging knob, not a flag: the endpoint has no authentication,
// so it listens only on a loopback address, and only when the variable is
// set. It is served from process start on, on a mux of its own (nothing is
// added to http.DefaultServeMux).
const pprofEnv = "SESHAT_PPROF_LISTEN"

func init() {
	if addr := os.Getenv(pprofEnv); addr != "" {
		if err := startPprof(addr); err != nil {
			fmt.Fprintf(os.Stderr, "seshatd: %s=%s: %v\n", pprofEnv, addr, err)
			os.Exit(2)
		}
	}
}

// startPprof serves the profiling handlers on addr, which must be a
// loopback address.
func startPprof(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("not a loopback address")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return nil
}
