package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// ErrMissingTool reports that a program the environment needs (such as
// sshd) is not installed. Shared skips on it, or fails under CI=true.
var ErrMissingTool = errors.New("required tool not installed")

// Env is a set of throwaway SSH hosts that all accept one user key. Every
// host is a real OpenSSH sshd listening on loopback, started as a child of the
// test process; everything lives under Dir and goes away with Close.
type Env struct {
	// Dir is the temporary root of everything the environment writes.
	Dir string
	// User is the login user on every host.
	User string
	// UID and GID are User's numeric ids, for chowning fixtures.
	UID, GID int
	// Home is User's home directory on the (shared) machine.
	Home string
	// KeyFile is User's unencrypted ed25519 private key (OpenSSH format, mode 0600).
	KeyFile string
	// KnownHosts is a known_hosts file with the key of every host in Hosts.
	KnownHosts string
	// Hosts are the hosts started with the environment, named h1, h2, ...
	Hosts []*Host

	sshd           sshdBinary
	authorizedKeys string
	place          placement
	spawn          *spawner
	startLimit     int // hosts started at once by startHosts; 0 means all

	mu     sync.Mutex
	next   int              // index of the next host to place
	extra  map[*Host]string // hosts added by StartHost that are still running
	closed bool
}

// Start starts a non-shared environment with n hosts named h1..hn. The
// caller must Close it. A missing sshd is reported as ErrMissingTool.
func Start(n int) (*Env, error) {
	return StartContext(context.Background(), n)
}

// StartContext is Start with a context bounding the whole start-up.
func StartContext(ctx context.Context, n int) (*Env, error) {
	return startEnv(ctx, n, func(*Env) (placement, error) { return loopback{}, nil })
}

// startEnv creates an environment, gives it the placement that newPlace
// builds once Dir exists, and starts n hosts in it.
func startEnv(ctx context.Context, n int, newPlace func(*Env) (placement, error)) (*Env, error) {
	if n < 0 {
		return nil, fmt.Errorf("testenv: negative host count %d", n)
	}
	bin, err := findSSHD(ctx)
	if err != nil {
		return nil, err
	}
	u, err := resolveUser(ctx)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// Privilege separation directory that sshd insists on when root.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, fmt.Errorf("testenv: create /run/sshd: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "skiff-testenv-")
	if err != nil {
		return nil, fmt.Errorf("testenv: temp dir: %w", err)
	}
	e := &Env{
		Dir:   dir,
		User:  u.name,
		UID:   u.uid,
		GID:   u.gid,
		Home:  u.home,
		sshd:  bin,
		place: loopback{},
		spawn: newSpawner(),
		extra: map[*Host]string{},
	}
	if err := e.prepare(); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	if e.place, err = newPlace(e); err != nil {
		e.place = loopback{}
		return nil, errors.Join(err, e.Close())
	}
	hosts, err := e.startHosts(ctx, n)
	e.Hosts = hosts
	if err != nil {
		return nil, errors.Join(err, e.Close())
	}
	if err := e.writeKnownHosts(); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	return e, nil
}

// prepare makes Dir traversable for the login user and writes the user key
// and the authorized_keys file every host uses.
func (e *Env) prepare() error {
	// sshd reads authorized_keys as the login user, so the path must be traversable.
	if err := os.Chmod(e.Dir, 0o755); err != nil {
		return fmt.Errorf("testenv: chmod %s: %w", e.Dir, err)
	}
	if err := os.Mkdir(filepath.Join(e.Dir, "hosts"), 0o755); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	e.KeyFile = filepath.Join(e.Dir, "id_ed25519")
	pub, err := writeKeyPair(e.KeyFile, "ed25519", "skiff-testenv user key")
	if err != nil {
		return err
	}
	e.authorizedKeys = filepath.Join(e.Dir, "authorized_keys")
	if err := os.WriteFile(e.authorizedKeys, ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		return fmt.Errorf("testenv: write authorized_keys: %w", err)
	}
	e.KnownHosts = filepath.Join(e.Dir, "known_hosts")
	return nil
}

// startHosts starts n hosts concurrently, at most startLimit at a time
// when it is set; on failure it still returns the hosts that did start so
// that Close can stop them.
func (e *Env) startHosts(ctx context.Context, n int) ([]*Host, error) {
	hosts := make([]*Host, n)
	errs := make([]error, n)
	limit := e.startLimit
	if limit <= 0 {
		limit = max(n, 1)
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			hosts[i], errs[i] = e.newHost(ctx, HostOptions{Name: fmt.Sprintf("h%d", i+1)})
		})
	}
	wg.Wait()
	started := hosts[:0]
	for _, h := range hosts {
		if h != nil {
			started = append(started, h)
		}
	}
	return started, errors.Join(errs...)
}

func (e *Env) writeKnownHosts() error {
	var b strings.Builder
	for _, h := range e.Hosts {
		b.WriteString(h.KnownHostsLine)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(e.KnownHosts, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("testenv: write known_hosts: %w", err)
	}
	return nil
}

// Close stops every host (including those from StartHost that are still
// running), kills whatever their sessions left behind and removes Dir.
// Closing twice is harmless.
func (e *Env) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	hosts := append([]*Host(nil), e.Hosts...)
	for h := range e.extra {
		hosts = append(hosts, h)
	}
	e.mu.Unlock()

	// Hosts stop concurrently: each Stop mostly waits for its processes.
	errs := make([]error, len(hosts), len(hosts)+3)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { errs[i] = h.Stop() })
	}
	wg.Wait()
	if err := e.place.close(); err != nil {
		errs = append(errs, err)
	}
	e.spawn.close()
	if err := os.RemoveAll(e.Dir); err != nil {
		errs = append(errs, fmt.Errorf("testenv: remove %s: %w", e.Dir, err))
	}
	return errors.Join(errs...)
}

// Host returns the host of Hosts with the given name, or nil.
func (e *Env) Host(name string) *Host {
	for _, h := range e.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// StartHost starts an extra host for one test and stops it in tb.Cleanup.
// Its key is NOT added to e.KnownHosts, so a test can check that an unknown
// host is refused; write h.KnownHostsLine somewhere to trust it. Several
// extra hosts may share a name: each gets its own directory.
func (e *Env) StartHost(tb testing.TB, name string) *Host {
	tb.Helper()
	return e.StartHostWith(tb, HostOptions{Name: name})
}

// StartHostWith is StartHost for a host configured by opts (several host
// key types, extra sshd_config lines).
func (e *Env) StartHostWith(tb testing.TB, opts HostOptions) *Host {
	tb.Helper()
	name := opts.Name
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		tb.Fatalf("testenv: StartHost(%q) on a closed environment", name)
	}
	h, err := e.newHost(context.Background(), opts)
	if err != nil {
		tb.Fatalf("testenv: start host %q: %v", name, err)
	}
	e.mu.Lock()
	e.extra[h] = name
	e.mu.Unlock()
	tb.Cleanup(func() {
		e.mu.Lock()
		delete(e.extra, h)
		e.mu.Unlock()
		if err := h.Stop(); err != nil {
			tb.Errorf("testenv: stop host %q: %v", name, err)
		}
	})
	return h
}
