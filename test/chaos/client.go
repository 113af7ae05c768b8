package chaos

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// outcome is what a client knows of one operation.
type outcome uint8

const (
	ok      outcome = iota // answered: it took effect (a write) or its value is known (a read)
	failed                 // certainly had no effect (refused before it ran)
	unknown                // a write that may or may not have taken effect
)

func (o outcome) String() string {
	return [...]string{"ok", "failed", "unknown"}[o]
}

// opTimeout bounds one client operation: past it the outcome is unknown.
const opTimeout = 3 * time.Second

func init() {
	// go-redis logs every failed dial; a nemesis makes thousands.
	redis.SetLogger(quietLogger{})
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// newClient is a connection to one node that never retries: every
// operation is sent once and its outcome classified.
func newClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		MaxRetries:      -1,
		DialTimeout:     500 * time.Millisecond,
		ReadTimeout:     opTimeout,
		WriteTimeout:    opTimeout,
		PoolSize:        1,
		MinIdleConns:    0,
		DisableIdentity: true,
		Protocol:        2,
	})
}

// classify says what err tells of an operation: a write refused before
// it ran (no leader, leadership changed, proposal dropped, disk full, a
// connection never made) failed; any other error leaves a write's
// outcome unknown. A read that did not answer had no effect: failed.
func classify(err error, write bool) outcome {
	if err == nil || errors.Is(err, redis.Nil) {
		return ok
	}
	if !write {
		return failed
	}
	msg := err.Error()
	for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "MISCONF"} {
		if strings.HasPrefix(msg, p) {
			return failed
		}
	}
	if strings.Contains(msg, "connection refused") || strings.Contains(msg, "dial tcp") && strings.Contains(msg, "i/o timeout") {
		return failed
	}
	return unknown
}

func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout+time.Second)
}
