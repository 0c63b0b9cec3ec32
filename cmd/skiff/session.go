package main

import (
	"errors"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/remote"
	"github.com/urfave/cli/v2"
)

// session is what every command that talks to hosts shares: the inventory, one SSH pool (so one connection
// per host for the whole run), the printer and the global options.
type session struct {
	inv      *inventory.Inventory
	pool     *remote.Pool
	out      *printer
	dryRun   bool
	verbose  bool
	hosts    []string
	parallel int
	// For notifications: the app acted on, the schedule that ran the command, who started it and when.
	app, schedule    string
	operator, origin string
	started          time.Time
	// progressMode and progressRows say how progress is shown (see progressMode); the view starts with the
	// first run that reports progress.
	progressMode string
	progressRows int
	viewOnce     sync.Once
}

// loadInventory reads the inventory named by -i and fills in the defaults that depend on the local machine.
func loadInventory(c *cli.Context) (*inventory.Inventory, error) {
	inv, err := inventory.Load(c.String("inventory"))
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

// newSession loads the inventory and prepares the SSH pool. Secrets for CI come from the environment only:
// SKIFF_SSH_KEY (a whole private key), SKIFF_SSH_PASSPHRASE and SKIFF_KNOWN_HOSTS.
func newSession(c *cli.Context) (*session, error) {
	inv, err := loadInventory(c)
	if err != nil {
		return nil, err
	}
	s := &session{
		inv:      inv,
		out:      newPrinter(c.App.Writer, c.App.ErrWriter, c.Bool("json"), c.Bool("dry-run")),
		dryRun:   c.Bool("dry-run"),
		verbose:  c.Bool("verbose"),
		hosts:    splitList(c.String("hosts")),
		parallel: c.Int("parallel"),
		schedule: c.String("schedule"),
		started:  time.Now(),
	}
	s.operator, s.origin = operatorAndOrigin()
	mode, rows, err := progressMode(c.String("progress"), c.App.Writer, s.out.json)
	if err != nil {
		return nil, err
	}
	s.out.progressTo = c.App.Writer
	if s.out.json {
		s.out.progressTo = c.App.ErrWriter
	}
	s.progressMode, s.progressRows = mode, rows
	s.out.onReport = func(r report) { s.notifyReport(c.Context, r) }
	if s.parallel < 0 {
		return nil, usagef("--parallel must be at least 1, not %d", s.parallel)
	}
	opts := remote.Options{
		AcceptNewHostKeys: c.Bool("accept-new-host-keys"),
		MaxHandshakes:     c.Int("max-handshakes"),
		KeyPEM:            []byte(os.Getenv("SKIFF_SSH_KEY")),
		Passphrase:        []byte(os.Getenv("SKIFF_SSH_PASSPHRASE")),
		KnownHostsData:    []byte(os.Getenv("SKIFF_KNOWN_HOSTS")),
		AgentSocket:       os.Getenv("SSH_AUTH_SOCK"),
	}
	if s.verbose {
		opts.Logf = func(format string, args ...any) { s.out.logf(format, args...) }
	}
	s.pool = remote.NewPool(opts)
	return s, nil
}

func (s *session) close() {
	s.out.stopProgress()
	if s.pool != nil {
		s.pool.Close()
	}
}

// progressEvent shows one progress event, starting the display with the first one (commands that report
// none never start it).
func (s *session) progressEvent(e deploy.Progress) {
	if s.progressMode == "none" {
		return
	}
	s.viewOnce.Do(func() {
		v := newProgressView(s.progressMode, s.progressRows, s.out)
		s.out.mu.Lock()
		s.out.view = v
		if lv, ok := v.(*liveProgress); ok {
			s.out.live = lv.bars // lines scroll above the display from now on
		}
		s.out.mu.Unlock()
	})
	s.out.mu.Lock()
	v := s.out.view
	s.out.mu.Unlock()
	if v != nil {
		v.event(e)
	}
}

// parallelOr returns --parallel when given, else def.
func (s *session) parallelOr(def int) int {
	if s.parallel > 0 {
		return s.parallel
	}
	return def
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}

// selectHosts resolves --hosts against the inventory; a name that is neither a host nor a group is a usage error.
func (s *session) selectHosts() ([]*inventory.Host, error) {
	hosts, err := s.inv.Select(s.hosts)
	if err != nil {
		return nil, usagef("--hosts: %v", err)
	}
	if len(hosts) == 0 {
		return nil, usagef("no hosts selected")
	}
	return hosts, nil
}
