package main

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/urfave/cli/v2"
)

// session is what every command that talks to hosts shares: the inventory, the fleet engine (so one
// connection per host for the whole run), the printer and the global options.
type session struct {
	inv     *inventory.Inventory
	engine  *fleet.Engine
	out     *printer
	dryRun  bool
	hosts   fleet.Selection
	who     fleet.Who
	started time.Time
}

// loadInventory reads the inventory named by -i and fills in the defaults that depend on the local machine.
func loadInventory(file string) (*inventory.Inventory, error) {
	inv, err := inventory.Load(file)
	var ie *inventory.Error
	if err != nil && !errors.As(err, &ie) {
		// A missing or unreadable inventory is an inventory error too (exit code 2), not a failed operation.
		return nil, usagef("%v", err)
	}
	if err != nil {
		return nil, err
	}
	if u, err := user.Current(); err == nil {
		for _, h := range inv.Hosts {
			if h.User == "" {
				h.User = u.Username
			}
		}
	}
	return inv, nil
}

// globals are the global options of one invocation, as flags and environment variables give them.
type globals struct {
	inventory     string
	hosts         []string
	parallel      int
	maxHandshakes int
	json          bool
	dryRun        bool
	verbose       bool
	acceptNew     bool
	progress      string
}

func globalsOf(c *cli.Context) globals {
	return globals{
		inventory: c.String("inventory"), hosts: splitList(c.String("hosts")), parallel: c.Int("parallel"),
		maxHandshakes: c.Int("max-handshakes"), json: c.Bool("json"), dryRun: c.Bool("dry-run"),
		verbose: c.Bool("verbose"), acceptNew: c.Bool("accept-new-host-keys"), progress: c.String("progress"),
	}
}

// newSession loads the inventory and starts the fleet engine, whose events the printer shows.
func newSession(c *cli.Context) (*session, error) {
	g := globalsOf(c)
	if g.parallel < 0 {
		return nil, usagef("--parallel must be at least 1, not %d", g.parallel)
	}
	inv, err := loadInventory(g.inventory)
	if err != nil {
		return nil, err
	}
	out := newPrinter(c.App.Writer, c.App.ErrWriter, g.json, g.dryRun)
	mode, rows, err := progressMode(g.progress, c.App.Writer, g.json)
	if err != nil {
		return nil, err
	}
	out.progressMode, out.progressRows, out.progressTo = mode, rows, c.App.Writer
	if g.json {
		out.progressTo = c.App.ErrWriter
	}
	cfg := engineConfig(inv, g, out.event, out.logf)
	s := &session{inv: inv, engine: fleet.New(cfg), out: out, dryRun: g.dryRun, hosts: g.hosts, who: cfg.Who, started: time.Now()}
	out.onReport = func(r report) { notifyReport(c.Context, inv, r, s.who, "", s.started, out.logf) }
	return s, nil
}

// engineConfig is a fleet engine's configuration for inv with the global options g; `skiff serve` changes who
// runs each job. Secrets for CI come from the environment only: SKIFF_SSH_KEY (a whole private key),
// SKIFF_SSH_PASSPHRASE and SKIFF_KNOWN_HOSTS.
func engineConfig(inv *inventory.Inventory, g globals, events func(fleet.Event), logf func(string, ...any)) fleet.Config {
	cfg := fleet.Config{
		Inventory: inv,
		SSH: fleet.SSH{
			AcceptNewHostKeys: g.acceptNew,
			MaxHandshakes:     g.maxHandshakes,
			KeyPEM:            []byte(os.Getenv("SKIFF_SSH_KEY")),
			Passphrase:        []byte(os.Getenv("SKIFF_SSH_PASSPHRASE")),
			KnownHostsData:    []byte(os.Getenv("SKIFF_KNOWN_HOSTS")),
			AgentSocket:       os.Getenv("SSH_AUTH_SOCK"),
		},
		Who:       fleet.WhoFromEnv(os.Getenv),
		Parallel:  g.parallel,
		DryRun:    g.dryRun,
		Secret:    os.Getenv,
		HashCache: hashCacheDir(),
		Events:    events,
	}
	if g.verbose {
		cfg.Debugf = logf
	}
	return cfg
}

func (s *session) close() {
	s.out.stopProgress()
	s.engine.Close()
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}

// hashCacheDir is where the hashes of shipped trees are remembered between runs (see ship.HashCache);
// SKIFF_HASH_CACHE=off turns the cache off, any other value names the directory.
func hashCacheDir() string {
	switch v := os.Getenv("SKIFF_HASH_CACHE"); v {
	case "off":
		return ""
	case "":
		dir, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(dir, "skiff", "hashes")
	default:
		return v
	}
}
