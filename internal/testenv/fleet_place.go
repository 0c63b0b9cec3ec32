package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fleetSetupTimeout bounds the ip commands that build one host's network.
const fleetSetupTimeout = 30 * time.Second

// fleet is the placement of hosts in namespaces of their own.
type fleet struct {
	env    *Env
	tools  fleetTools
	token  string // names this fleet's namespaces: skiff-TOKEN-N
	owner  *ownerLock
	subnet fleetSubnet
	conf   string // the supervisord.conf every host runs; "" for none

	mu     sync.Mutex
	hosts  map[int]*nsHost    // by host index
	byIP   map[string]*nsHost // by the host's inner address
	taken  map[int]bool       // subnet slots in use by any fleet
	next   int                // next slot to try
	closed bool
}

// nsHost is the network of one fleet host.
type nsHost struct {
	netns        string // skiff-TOKEN-N
	veth         string // root side; "" until created
	outer, inner string // addresses on the machine's and on the host's side
	nsCreated    bool
}

// newFleet makes the fleet placement for e: it takes the owner lock,
// sweeps what dead fleets left, checks that namespaces can be created and
// writes the supervisord configuration.
func newFleet(ctx context.Context, e *Env, opts FleetOptions, tools fleetTools, subnet fleetSubnet) (*fleet, error) {
	token := strings.ToLower(rand.Text()[:8])
	owner, err := lockOwner(token, e.Dir)
	if err != nil {
		return nil, err
	}
	f := &fleet{
		env:    e,
		tools:  tools,
		token:  token,
		owner:  owner,
		subnet: subnet,
		hosts:  map[int]*nsHost{},
		byIP:   map[string]*nsHost{},
	}
	sweepStale(ctx, tools.ip, token)
	if err := f.probe(ctx); err != nil {
		return nil, errors.Join(err, owner.release())
	}
	if !opts.NoSupervisord {
		f.conf = filepath.Join(e.Dir, "fleet-supervisord.conf")
		conf := fleetSupervisordConfig(opts, e.UID, e.GID)
		if err := os.WriteFile(f.conf, []byte(conf), 0o600); err != nil {
			return nil, errors.Join(fmt.Errorf("testenv: write supervisord.conf: %w", err), owner.release())
		}
	}
	f.taken = takenSlots(subnet)
	// Starting a host is CPU-bound (supervisord's start-up dominates): more
	// hosts at once than about two per CPU only make each one slower.
	e.startLimit = opts.Parallel
	if e.startLimit <= 0 {
		e.startLimit = 2 * runtime.NumCPU()
	}
	return f, nil
}

// probe creates and deletes namespace skiff-TOKEN-0, telling "not allowed"
// (ErrNoNamespaces) from other failures before any host starts.
func (f *fleet) probe(ctx context.Context) error {
	name := "skiff-" + f.token + "-0"
	if err := runIP(ctx, f.tools.ip, "", "netns", "add", name); err != nil {
		msg := err.Error()
		if strings.Contains(msg, "not permitted") || strings.Contains(msg, "Permission denied") {
			return fmt.Errorf("testenv: fleet: %w: %w", ErrNoNamespaces, err)
		}
		return fmt.Errorf("testenv: fleet: %w", err)
	}
	return runIP(ctx, f.tools.ip, "", "netns", "del", name)
}

// listenAddr creates the index-th host's namespace and veth pair, once,
// and returns the address inside it.
func (f *fleet) listenAddr(index int) (string, int, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return "", 0, errors.New("testenv: fleet closed")
	}
	n := f.hosts[index]
	if n != nil && n.inner != "" {
		f.mu.Unlock()
		return n.inner, 22, nil
	}
	if n == nil {
		n = &nsHost{netns: fmt.Sprintf("skiff-%s-%d", f.token, index+1)}
		f.hosts[index] = n
	}
	f.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), fleetSetupTimeout)
	defer cancel()
	if err := f.setup(ctx, n); err != nil {
		return "", 0, fmt.Errorf("testenv: fleet host %d: %w", index+1, err)
	}
	f.mu.Lock()
	f.byIP[n.inner] = n
	f.mu.Unlock()
	return n.inner, 22, nil
}

// setup builds one host's network: the namespace, a veth pair on a free
// /30 (eth0 inside), both ends addressed and up, and lo up inside.
func (f *fleet) setup(ctx context.Context, n *nsHost) error {
	ip := f.tools.ip
	if !n.nsCreated {
		if err := runIP(ctx, ip, "", "netns", "add", n.netns); err != nil {
			return err
		}
		f.mu.Lock()
		n.nsCreated = true
		f.mu.Unlock()
	}
	var outer, inner, veth string
	for {
		slot, err := f.reserveSlot()
		if err != nil {
			return err
		}
		network, o, i := f.subnet.addrs(slot)
		veth, outer, inner = vethName(network), o.String(), i.String()
		err = runIP(ctx, ip, "", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", n.netns)
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "File exists") {
			return err
		}
		// Another test binary took the slot since we looked; it stays taken.
	}
	f.mu.Lock()
	n.veth = veth
	f.mu.Unlock()
	if err := runIP(ctx, ip, "addr add "+outer+"/30 dev "+veth+"\nlink set "+veth+" up\n", "-batch", "-"); err != nil {
		return err
	}
	inside := "addr add " + inner + "/30 dev eth0\nlink set eth0 up\nlink set lo up\n"
	if err := runIP(ctx, ip, inside, "-n", n.netns, "-batch", "-"); err != nil {
		return err
	}
	f.mu.Lock()
	n.outer, n.inner = outer, inner
	f.mu.Unlock()
	return nil
}

// reserveSlot takes the next slot of the subnet that no veth uses.
func (f *fleet) reserveSlot() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ; f.next < f.subnet.slots; f.next++ {
		if !f.taken[f.next] {
			f.taken[f.next] = true
			return f.next, nil
		}
	}
	return 0, fmt.Errorf("testenv: fleet subnet %s is full", f.subnet.net)
}

// boot returns the command that starts the host: inside its network
// namespace, in a mount namespace of its own, the boot script mounts
// Root/srv over /srv, starts supervisord, waits for its socket and execs
// sshd (argv), so that both daemons see the same /srv and loopback.
func (f *fleet) boot(h *Host, argv []string) *exec.Cmd {
	f.mu.Lock()
	n := f.byIP[h.IP]
	f.mu.Unlock()
	if n == nil {
		msg := "testenv: no fleet namespace for " + h.Name + " at " + h.IP
		return exec.Command("/bin/sh", "-c", `echo "$1" >>"$2"; exit 1`, "sh", msg, h.LogFile)
	}
	args := []string{
		"netns", "exec", n.netns,
		f.tools.unshare, "--mount", "--propagation", "private",
		"/bin/sh", "-c", fleetBootScript, "testenv-boot",
		filepath.Join(h.Root, "srv"), fmt.Sprintf("%d:%d", f.env.UID, f.env.GID), f.conf, h.LogFile, h.token,
	}
	return exec.Command(f.tools.ip, append(args, argv...)...)
}

// fleetBootScript runs as root inside a fresh mount namespace with
// arguments SRV OWNER CONF LOG TOKEN ARGV...; an empty CONF means no
// supervisord. Failures go to LOG, sshd's log, which the start error shows. Every process it starts carries the
// host's SKIFF_TESTENV_TOKEN, so that Stop finds them all.
const fleetBootScript = `srv=$1 owner=$2 conf=$3 log=$4
SKIFF_TESTENV_TOKEN=$5
export SKIFF_TESTENV_TOKEN
shift 5
fail() { echo "testenv boot: $*" >>"$log"; exit 1; }
mkdir -p "$srv/run/supervisor" && chown "$owner" "$srv" || fail "prepare $srv"
mkdir -p /srv && mount --bind "$srv" /srv || fail "bind-mount $srv over /srv"
[ -n "$conf" ] || exec "$@"
rm -f /srv/run/supervisor.sock
out=/srv/run/supervisor/supervisord.out
/usr/bin/supervisord -n -c "$conf" >"$out" 2>&1 </dev/null &
sup=$!
tries=0
until [ -S /srv/run/supervisor.sock ]; do
	kill -0 "$sup" 2>/dev/null || fail "supervisord exited: $(tail -n 20 "$out")"
	tries=$((tries + 1))
	[ "$tries" -lt 400 ] || fail "supervisord did not create /srv/run/supervisor.sock"
	sleep 0.02
done
exec "$@"
`

// command runs argv in the running host's namespaces through nsenter.
func (f *fleet) command(ctx context.Context, h *Host, argv []string) *exec.Cmd {
	h.mu.Lock()
	p := h.proc
	h.mu.Unlock()
	if p == nil || p.exited() {
		return exec.CommandContext(ctx, "/bin/sh", "-c", `echo "testenv: host $1 is not running" >&2; exit 1`, "sh", h.Name)
	}
	args := append([]string{"--target", strconv.Itoa(p.cmd.Process.Pid), "--net", "--mount", "--"}, argv...)
	cmd := exec.CommandContext(ctx, f.tools.nsenter, args...)
	cmd.Env = append(os.Environ(), "SKIFF_TESTENV_TOKEN="+h.token)
	return cmd
}

// close kills whatever is still running in the fleet's namespaces, deletes
// the veths and namespaces and drops the owner lock. Env.Close calls it
// after stopping every host.
func (f *fleet) close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	var names []string
	var batch strings.Builder
	for _, n := range f.hosts {
		if n.veth != "" {
			fmt.Fprintf(&batch, "link del %s\n", n.veth)
		}
	}
	for _, n := range f.hosts {
		if n.nsCreated {
			names = append(names, n.netns)
			fmt.Fprintf(&batch, "netns del %s\n", n.netns)
		}
	}
	f.mu.Unlock()

	var errs []error
	if err := killInNetns(names); err != nil {
		errs = append(errs, err)
	}
	if batch.Len() > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), fleetSetupTimeout)
		defer cancel()
		if err := runIP(ctx, f.tools.ip, batch.String(), "-force", "-batch", "-"); err != nil {
			errs = append(errs, fmt.Errorf("testenv: fleet teardown: %w", err))
		}
	}
	if err := f.owner.release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// fleetSupervisordConfig renders the supervisord.conf that every fleet host
// runs. supervisord runs as root, like on a real server; its unix socket
// belongs to the login user (uid:gid), and its log, pid file and program
// logs live under the host's private /srv/run.
func fleetSupervisordConfig(opts FleetOptions, uid, gid int) string {
	var auth string
	if opts.SupervisorUser != "" {
		sum := sha1.Sum([]byte(opts.SupervisorPassword))
		auth = fmt.Sprintf("username=%s\npassword={SHA}%s\n", opts.SupervisorUser, hex.EncodeToString(sum[:]))
	}
	var b strings.Builder
	b.WriteString("; Written by internal/testenv: the same file for every fleet host.\n")
	fmt.Fprintf(&b, "[unix_http_server]\nfile=/srv/run/supervisor.sock\nchmod=0700\nchown=%d:%d\n%s\n", uid, gid, auth)
	if opts.SupervisorInet {
		fmt.Fprintf(&b, "[inet_http_server]\nport=%s\n%s\n", strings.TrimPrefix(FleetSupervisorInetURL, "http://"), auth)
	}
	b.WriteString("[supervisord]\nuser=root\nlogfile=/srv/run/supervisor/supervisord.log\n" +
		"pidfile=/srv/run/supervisord.pid\nchildlogdir=/srv/run/supervisor\nloglevel=info\n\n")
	fmt.Fprintf(&b, "[supervisorctl]\nserverurl=%s\n\n", FleetSupervisorURL)
	b.WriteString("[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n")
	b.WriteString(opts.Programs)
	if !strings.HasSuffix(opts.Programs, "\n") {
		b.WriteString("\n")
	}
	return b.String()
}

// exited reports whether the process has been reaped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
