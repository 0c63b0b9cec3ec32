package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// startTimeout bounds how long one sshd may take to listen.
const startTimeout = 10 * time.Second

// Host is one test host: a real sshd listening on its own loopback address.
type Host struct {
	// Name is the host's name (h1, h2, ... or the name given to StartHost).
	Name string
	// IP is the address sshd listens on: 127.0.0.N, one per host (or
	// 127.0.0.1 where such addresses cannot be bound); for fleet hosts, the
	// address of the host's network namespace (see StartFleet).
	IP string
	// Port is the TCP port sshd listens on (22 for fleet hosts).
	Port int
	// Addr is IP:Port.
	Addr string
	// Dir holds the host's sshd_config, host key, pid file and log.
	Dir string
	// Root is a directory owned by the login user standing in for the
	// host's file system; apps deploy under Root+"/srv/...". Fleet hosts
	// see Root+"/srv" as their own /srv, so apps there deploy to /srv/....
	Root string
	// HostKeyFile is the host's private key (ed25519 unless HostOptions
	// asked for other types first).
	HostKeyFile string
	// HostKeyFingerprint is HostKeyFile's SHA256 fingerprint ("SHA256:...").
	HostKeyFingerprint string
	// KnownHostsLine is the known_hosts line for HostKeyFile
	// ("[IP]:Port ssh-ed25519 ...").
	KnownHostsLine string
	// HostKeys are the public halves of all the host's keys, HostKeyFile's
	// first.
	HostKeys []ssh.PublicKey
	// ConfigFile is the host's sshd_config.
	ConfigFile string
	// LogFile receives sshd's log (LogLevel VERBOSE); read it when a test fails.
	LogFile string

	env          *Env
	token        string   // marks every process started by this host's sessions
	hostKeyFiles []string // all host keys, HostKeyFile first
	extraConfig  []string // HostOptions.Config

	mu   sync.Mutex
	proc *process
}

// errAddrInUse reports that sshd could not bind its port, which another
// process took between freePort and sshd's bind.
var errAddrInUse = errors.New("address already in use")

// newHost creates the host's files and starts its sshd, picking another port
// when the first one was taken in the meantime.
func (e *Env) newHost(ctx context.Context, opts HostOptions) (*Host, error) {
	e.mu.Lock()
	index := e.next
	e.next++
	e.mu.Unlock()

	h, err := e.layoutHost(opts)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		ip, port, err := e.place.listenAddr(index)
		if err != nil {
			return nil, err
		}
		h.IP, h.Port, h.Addr = ip, port, net.JoinHostPort(ip, strconv.Itoa(port))
		err = h.start(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || attempt == 5 {
			return nil, err
		}
	}
	h.KnownHostsLine = knownhosts.Line([]string{h.Addr}, h.HostKeys[0])
	return h, nil
}

// layoutHost creates the host's directory, Root and host keys.
func (e *Env) layoutHost(opts HostOptions) (*Host, error) {
	name := opts.Name
	if name == "" || strings.ContainsAny(name, "/ \t\n") {
		return nil, fmt.Errorf("testenv: invalid host name %q", name)
	}
	parent := filepath.Join(e.Dir, "hosts")
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("testenv: %w", err)
		}
		if dir, err = os.MkdirTemp(parent, name+"-"); err != nil {
			return nil, fmt.Errorf("testenv: %w", err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, fmt.Errorf("testenv: %w", err)
		}
	}
	token := make([]byte, 12)
	if _, err := rand.Read(token); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	h := &Host{
		Name:        name,
		Dir:         dir,
		Root:        filepath.Join(dir, "root"),
		ConfigFile:  filepath.Join(dir, "sshd_config"),
		LogFile:     filepath.Join(dir, "sshd.log"),
		env:         e,
		token:       hex.EncodeToString(token),
		extraConfig: opts.Config,
	}
	if err := os.Mkdir(h.Root, 0o755); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := os.Chown(h.Root, e.UID, e.GID); err != nil {
		return nil, fmt.Errorf("testenv: chown %s: %w", h.Root, err)
	}
	for _, typ := range opts.keyTypes() {
		path := filepath.Join(dir, "ssh_host_"+typ+"_key")
		pub, err := writeKeyPair(path, typ, "skiff-testenv host "+name)
		if err != nil {
			return nil, err
		}
		h.hostKeyFiles = append(h.hostKeyFiles, path)
		h.HostKeys = append(h.HostKeys, pub)
	}
	h.HostKeyFile = h.hostKeyFiles[0]
	h.HostKeyFingerprint = ssh.FingerprintSHA256(h.HostKeys[0])
	return h, nil
}

// config renders the host's sshd_config.
func (h *Host) config() string {
	e := h.env
	lines := append([]string(nil), h.extraConfig...)
	for _, k := range h.hostKeyFiles {
		lines = append(lines, "HostKey "+k)
	}
	lines = append(lines,
		"ListenAddress "+h.Addr,
		"PidFile "+filepath.Join(h.Dir, "sshd.pid"),
		"AuthorizedKeysFile "+e.authorizedKeys,
		"AllowUsers "+e.User,
		"StrictModes no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"HostbasedAuthentication no",
		"UsePAM no",
		"PermitRootLogin no",
		"UseDNS no",
		"PrintMotd no",
		"PrintLastLog no",
		"X11Forwarding no",
		"Subsystem sftp internal-sftp",
		"AllowTcpForwarding yes",
		"AllowStreamLocalForwarding yes",
		"StreamLocalBindUnlink yes",
		"MaxSessions 10",
		// Tests open many connections at once; never drop one at random.
		"MaxStartups 200",
		// sshd's default: hundreds of logins at once on two cores (the benchmark's fleets) take longer than
		// 30 s, and sshd closes a connection that has not logged in by then.
		"LoginGraceTime 120",
		"LogLevel VERBOSE",
		"SetEnv SKIFF_TESTENV_HOST="+h.Name+" SKIFF_TESTENV_TOKEN="+h.token,
	)
	if e.sshd.atLeast(9, 8) {
		// Tests fail logins on purpose; sshd must not start refusing loopback.
		lines = append(lines, "PerSourcePenalties no")
	}
	return strings.Join(lines, "\n") + "\n"
}

// start writes the config and starts sshd, returning once it listens.
func (h *Host) start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc != nil {
		return fmt.Errorf("testenv: host %s already running", h.Name)
	}
	if err := os.WriteFile(h.ConfigFile, []byte(h.config()), 0o644); err != nil {
		return fmt.Errorf("testenv: write sshd_config: %w", err)
	}
	offset := fileSize(h.LogFile)
	cmd := h.env.place.boot(h, []string{h.env.sshd.path, "-D", "-f", h.ConfigFile, "-E", h.LogFile})
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	p, err := h.env.spawn.start(cmd)
	if err != nil {
		return fmt.Errorf("testenv: start sshd for %s: %w", h.Name, err)
	}
	if err := h.waitListening(ctx, p, offset); err != nil {
		return errors.Join(err, p.kill(h.token))
	}
	h.proc = p
	return nil
}

// waitListening polls sshd's log for the line it writes once it listens,
// and reports the tail of the log when sshd exits or takes too long.
func (h *Host) waitListening(ctx context.Context, p *process, offset int64) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	want := []byte(fmt.Sprintf("Server listening on %s port %d.", h.IP, h.Port))
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		log := readFrom(h.LogFile, offset)
		if bytes.Contains(log, want) {
			return nil
		}
		select {
		case <-p.done:
			log = readFrom(h.LogFile, offset)
			err := fmt.Errorf("testenv: sshd for %s on %s exited: %v; log:\n%s", h.Name, h.Addr, p.err, tail(log, 20))
			if bytes.Contains(log, []byte("Address already in use")) {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("testenv: sshd for %s on %s not listening: %w; log:\n%s",
				h.Name, h.Addr, ctx.Err(), tail(readFrom(h.LogFile, offset), 20))
		case <-tick.C:
		}
	}
}

// Stop stops the host's sshd and kills every connection and every process
// its sessions started, as if the machine went down. The host keeps its
// address, port and key for Restart. Stopping a stopped host is harmless.
func (h *Host) Stop() error {
	h.mu.Lock()
	p := h.proc
	h.proc = nil
	h.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.kill(h.token); err != nil {
		return fmt.Errorf("testenv: stop %s: %w", h.Name, err)
	}
	return nil
}

// Restart stops the host and starts it again with the same key, address and
// port.
func (h *Host) Restart() error {
	if err := h.Stop(); err != nil {
		return err
	}
	return h.start(context.Background())
}

// Running reports whether the host's sshd is up.
func (h *Host) Running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.proc != nil
}

// Log returns the host's sshd log so far, for failure messages.
func (h *Host) Log() string {
	return string(readFrom(h.LogFile, 0))
}

// SSHArgs returns the arguments for the system ssh client to log in to the
// host with the environment's key and known_hosts, ignoring the invoking
// user's own configuration and agent; append the remote command.
func (h *Host) SSHArgs() []string {
	return []string{
		"-F", "/dev/null",
		"-i", h.env.KeyFile,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + h.env.KnownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "LogLevel=ERROR",
		"-p", strconv.Itoa(h.Port),
		h.env.User + "@" + h.IP,
	}
}

// Command returns a command that runs name with args where the host lives,
// as the test process's own user. With loopback hosts that is the test
// machine itself; fleet hosts run it inside the host's network and mount
// namespaces (see Exec).
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return h.env.place.command(context.Background(), h, append([]string{name}, args...))
}

// sshdBinary is the sshd to run and its OpenSSH version.
type sshdBinary struct {
	path         string
	major, minor int
}

func (b sshdBinary) atLeast(major, minor int) bool {
	return b.major > major || (b.major == major && b.minor >= minor)
}

var opensshVersion = regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`)

// findSSHD locates sshd by absolute path (sshd refuses to re-exec itself
// otherwise) and reads its version.
func findSSHD(ctx context.Context) (sshdBinary, error) {
	path := "/usr/sbin/sshd"
	if _, err := os.Stat(path); err != nil {
		p, lerr := exec.LookPath("sshd")
		if lerr != nil {
			return sshdBinary{}, fmt.Errorf("testenv: sshd (openssh-server): %w", ErrMissingTool)
		}
		if path, err = filepath.Abs(p); err != nil {
			return sshdBinary{}, fmt.Errorf("testenv: %w", err)
		}
	}
	// sshd -V prints the version and exits non-zero on older releases.
	out, _ := exec.CommandContext(ctx, path, "-V").CombinedOutput()
	b := sshdBinary{path: path}
	if m := opensshVersion.FindSubmatch(out); m != nil {
		b.major, _ = strconv.Atoi(string(m[1]))
		b.minor, _ = strconv.Atoi(string(m[2]))
	}
	return b, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns the file's content from offset on, or nothing.
func readFrom(path string, offset int64) []byte {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < offset {
		return nil
	}
	return data[offset:]
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
