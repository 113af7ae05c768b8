package main

import (
	"errors"
	"net"
	"testing"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/adapters/memory"
)

func TestMetricsListenFlag(t *testing.T) {
	args := []string{"--id", "1", "--data-dir", "/d", "--cluster", "1=a:1"}
	cfg, err := parseFlags(args, env(map[string]string{"SESHAT_METRICS_LISTEN": "0.0.0.0:9379"}))
	if err != nil || cfg.metricsListen != "0.0.0.0:9379" {
		t.Fatalf("SESHAT_METRICS_LISTEN: config %q, %v", cfg.metricsListen, err)
	}
	cfg, err = parseFlags(args, env(nil))
	if err != nil || cfg.metricsListen != "" {
		t.Fatalf("no --metrics-listen: config %q, %v; want none", cfg.metricsListen, err)
	}
}

func TestObserverOff(t *testing.T) {
	obs, err := newObserver(config{}, zerolog.Nop())
	if err != nil || obs != nil {
		t.Fatalf("newObserver without --metrics-listen = %v, %v; want nil, nil", obs, err)
	}
	// Without metrics the stores are handed on unchanged.
	ls := memory.NewLogStore()
	if got := obs.logStore(ls); got != ls {
		t.Errorf("logStore wrapped %T without --metrics-listen", got)
	}
	sm := memory.NewKV()
	if got := obs.stateMachine(sm); got != sm {
		t.Errorf("stateMachine wrapped %T without --metrics-listen", got)
	}
}

func TestObserverAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = newObserver(config{id: 1, metricsListen: ln.Addr().String()}, zerolog.Nop())
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("--metrics-listen on an address in use: %v, want a configuration error", err)
	}
}
