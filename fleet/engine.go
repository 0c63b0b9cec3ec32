// Package fleet is skiff's fleet engine: given the inventory and a request (deploy, rollback, prune, status,
// releases, lock, check, exec), it selects the hosts, connects to each once, runs the app's batches under its
// failure policy, rolls the fleet back when asked, and returns typed per-host results while it streams events
// (host, kind, line) to a sink. The CLI, `skiff cron` and `skiff serve` all call it; none of them holds fleet
// logic of its own, and none of them runs the CLI in-process.
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/remote"
)

// SSH configures how the engine reaches hosts: trust, credentials and limits shared by every host.
type SSH struct {
	// AcceptNewHostKeys adds unknown host keys to known_hosts (never a changed one).
	AcceptNewHostKeys bool
	// MaxHandshakes caps SSH handshakes in flight at once; 0 means remote's default.
	MaxHandshakes int
	// KeyPEM is a whole private key (SKIFF_SSH_KEY) and Passphrase decrypts it (SKIFF_SSH_PASSPHRASE).
	KeyPEM, Passphrase []byte
	// KnownHostsData is known_hosts content given whole (SKIFF_KNOWN_HOSTS).
	KnownHostsData []byte
	// AgentSocket is the ssh-agent socket (SSH_AUTH_SOCK); "" means no agent.
	AgentSocket string
}

// Who says who and what started the runs of an engine; it is recorded in each target's lock and history.
type Who struct {
	Operator, Origin, Machine string
	PID                       int
}

// Config configures an Engine.
type Config struct {
	Inventory *inventory.Inventory
	SSH       SSH
	Who       Who
	// Parallel overrides the hosts in flight at once (the app's rollout.parallel, or 20 for other commands).
	Parallel int
	// DryRun changes nothing on any host: commands that would change state are rendered as events instead.
	DryRun bool
	// Secret looks up a secret by the environment variable the inventory names; nil means os.Getenv.
	Secret func(name string) string
	// HashCache is the directory of the local hash cache of shipped trees; "" turns it off.
	HashCache string
	// Events receives what happens while a request runs; nil discards it. It is called from the hosts'
	// goroutines, one call at a time per host; the sink must not block for long.
	Events func(Event)
	// Debugf receives SSH debug messages (verbose mode); nil discards them.
	Debugf func(format string, args ...any)
}

// Engine runs requests against the hosts of one inventory, over one SSH connection per host, opened on first
// use, shared by the requests in flight and closed once no job holds it. It is safe for concurrent use by
// several requests.
type Engine struct {
	cfg  Config
	pool *remote.Pool

	mu   sync.Mutex
	held map[string]int // jobs in flight per host name (hold, release)
}

// New returns an engine for cfg. Close it to close its connections.
func New(cfg Config) *Engine {
	if cfg.Secret == nil {
		cfg.Secret = os.Getenv
	}
	if cfg.Events == nil {
		cfg.Events = func(Event) {}
	}
	opts := remote.Options{
		AcceptNewHostKeys: cfg.SSH.AcceptNewHostKeys,
		MaxHandshakes:     cfg.SSH.MaxHandshakes,
		KeyPEM:            cfg.SSH.KeyPEM,
		Passphrase:        cfg.SSH.Passphrase,
		KnownHostsData:    cfg.SSH.KnownHostsData,
		AgentSocket:       cfg.SSH.AgentSocket,
		Logf:              cfg.Debugf,
	}
	return &Engine{cfg: cfg, pool: remote.NewPool(opts), held: map[string]int{}}
}

// Close closes every connection the engine opened.
func (e *Engine) Close() error { return e.pool.Close() }

// conn returns the one connection to host h, opening it on first use.
func (e *Engine) conn(ctx context.Context, h *inventory.Host) (*remote.Conn, error) {
	return e.pool.Get(ctx, deploy.Target(e.cfg.Inventory, h))
}

// hold returns the connection to host h for a job, opening it on first use; the job gives it back with
// release once it is done with the host.
func (e *Engine) hold(ctx context.Context, h *inventory.Host) (*remote.Conn, error) {
	e.mu.Lock()
	e.held[h.Name]++
	e.mu.Unlock()
	return e.conn(ctx, h)
}

// release gives back what hold took, and closes the connection to h when no job of any request holds it, so
// that a run over many hosts keeps only the connections of the hosts in flight (a later use dials again).
func (e *Engine) release(h *inventory.Host) {
	e.mu.Lock()
	e.held[h.Name]--
	last := e.held[h.Name] == 0
	if last {
		delete(e.held, h.Name)
	}
	e.mu.Unlock()
	if last {
		e.pool.Release(deploy.Target(e.cfg.Inventory, h))
	}
}

// options are the deploy options of one request: who runs it, as one run id, and where its lines go.
func (e *Engine) options() *deploy.Options {
	id := make([]byte, 6)
	_, _ = rand.Read(id)
	return &deploy.Options{
		Operator: e.cfg.Who.Operator, Origin: e.cfg.Who.Origin, Machine: e.cfg.Who.Machine, PID: e.cfg.Who.PID,
		Run:    hex.EncodeToString(id),
		DryRun: e.cfg.DryRun,
		Log:    func(host, line string) { e.emit(Event{Kind: EventLine, Host: host, Stream: "stdout", Text: line}) },
		Progress: func(p deploy.Progress) {
			e.emit(Event{Kind: EventProgress, Host: p.Host, Progress: &p})
		},
		Secret: e.cfg.Secret,
	}
}

func (e *Engine) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.cfg.Events(ev)
}

func (e *Engine) notice(format string, args ...any) {
	e.emit(Event{Kind: EventNotice, Text: fmt.Sprintf(format, args...)})
}

func (e *Engine) parallelOr(def int) int {
	if e.cfg.Parallel > 0 {
		return e.cfg.Parallel
	}
	return def
}

// RequestError is a request that cannot run as asked (an unknown app, no hosts selected, a missing secret,
// a bad source): nothing was done on any host. The CLI maps it to exit code 2.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

func requestf(format string, args ...any) error {
	return &RequestError{Msg: fmt.Sprintf(format, args...)}
}

// IsUnreachable reports whether err is a failure to reach or authenticate a host, or a host key that is
// unknown or changed.
func IsUnreachable(err error) bool { return remote.IsConnectError(err) }

// IsRequestError reports whether err is a RequestError.
func IsRequestError(err error) bool {
	var re *RequestError
	return errors.As(err, &re)
}

// WhoFromEnv says who runs skiff and from where: SKIFF_OPERATOR or USER, and the CI job when CI variables
// name one (GitLab's CI_JOB_URL, Jenkins' BUILD_URL, GitHub Actions' run URL), else "cli".
func WhoFromEnv(getenv func(string) string) Who {
	machine, _ := os.Hostname()
	operator := getenv("SKIFF_OPERATOR")
	if operator == "" {
		operator = getenv("USER")
	}
	origin := "cli"
	for _, v := range []string{"CI_JOB_URL", "BUILD_URL"} {
		if u := getenv(v); u != "" {
			origin = u
		}
	}
	if gh := getenv("GITHUB_RUN_ID"); gh != "" {
		origin = getenv("GITHUB_SERVER_URL") + "/" + getenv("GITHUB_REPOSITORY") + "/actions/runs/" + gh
	}
	return Who{Operator: operator, Origin: origin, Machine: machine, PID: os.Getpid()}
}
