package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// webProgram serves each host's /srv/www on 127.0.0.1:8088, the same port
// on every host.
const webProgram = `
[program:web]
command=/usr/bin/python3 -m http.server 8088 --bind 127.0.0.1 --directory /srv/www
user=` + TestUserName + `
autostart=false
startsecs=0
`

// sshClient logs in to h with the environment's key and known_hosts, as
// skiff does, and closes the connection when t ends.
func sshClient(t *testing.T, e *Env, h *Host) *ssh.Client {
	t.Helper()
	key, err := os.ReadFile(e.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	hostKeys, err := knownhosts.New(e.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", h.Addr, &ssh.ClientConfig{
		User:            e.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh %s: %v\nsshd log:\n%s", h.Addr, err, h.Log())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tunnelClient is an HTTP client whose every connection is a tunnel
// through c to network/addr as the host sees it.
func tunnelClient(c *ssh.Client, network, addr string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return c.Dial(network, addr)
		},
		DisableKeepAlives: true,
	}}
}

func TestFleet_HostsLookAlikeButAreSeparate(t *testing.T) {
	e := Fleet(t, FleetOptions{Hosts: 3, Programs: webProgram})
	_, subnet, _ := net.ParseCIDR(DefaultFleetSubnet)

	t.Run("addresses, port 22 and inventory", func(t *testing.T) {
		inv := e.InventoryTOML("")
		seen := map[string]bool{}
		for _, h := range e.Hosts {
			if h.Port != 22 || h.Addr != h.IP+":22" || !subnet.Contains(net.ParseIP(h.IP)) || seen[h.IP] {
				t.Errorf("%s at %s (IP %s, port %d), want a distinct address in %s, port 22", h.Name, h.Addr, h.IP, h.Port, subnet)
			}
			seen[h.IP] = true
			if !strings.HasPrefix(h.KnownHostsLine, h.IP+" ssh-ed25519 ") {
				t.Errorf("known_hosts line %q, want %q first", h.KnownHostsLine, h.IP+" ssh-ed25519")
			}
			if entry := fmt.Sprintf("[hosts.%s]\naddress = %q\nport = 22\n", h.Name, h.IP); !strings.Contains(inv, entry) {
				t.Errorf("inventory lacks %q:\n%s", entry, inv)
			}
			if h.SupervisorURL() != FleetSupervisorURL {
				t.Errorf("SupervisorURL() = %q", h.SupervisorURL())
			}
		}
	})

	t.Run("ssh as the login user", func(t *testing.T) {
		eachHost(t, e, func(t *testing.T, h *Host) {
			out, err := runSSH(t, h, e.KnownHosts, "id -un; echo $SKIFF_TESTENV_HOST")
			if want := e.User + "\n" + h.Name; err != nil || out != want {
				t.Errorf("ssh %s = %q, %v; want %q\nsshd log:\n%s", h.Addr, out, err, want, h.Log())
			}
		})
	})

	t.Run("private /srv", func(t *testing.T) {
		h1 := e.Hosts[0]
		if out, err := runSSH(t, h1, e.KnownHosts, "echo from-h1 >/srv/marker"); err != nil {
			t.Fatalf("ssh: %v: %s", err, out)
		}
		eachHost(t, e, func(t *testing.T, h *Host) {
			want := "absent"
			if h == h1 {
				want = "from-h1"
			}
			if out, _ := runSSH(t, h, e.KnownHosts, "cat /srv/marker 2>/dev/null || echo absent"); out != want {
				t.Errorf("/srv/marker over ssh = %q, want %q", out, want)
			}
			out, _ := h.Exec(t.Context(), "sh", "-c", "cat /srv/marker 2>/dev/null || echo absent").Output()
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("/srv/marker through Exec = %q, want %q", got, want)
			}
			_, err := os.Stat(filepath.Join(h.Root, "srv", "marker"))
			if exists := err == nil; exists != (h == h1) {
				t.Errorf("Root/srv/marker exists = %v", exists)
			}
		})
	})

	t.Run("own supervisord at the same socket", func(t *testing.T) {
		var mu sync.Mutex
		pids := map[string]string{}
		eachHost(t, e, func(t *testing.T, h *Host) {
			out, err := runSSH(t, h, e.KnownHosts,
				"stat -c %U /srv/run/supervisor.sock && supervisorctl -s "+FleetSupervisorURL+" pid")
			lines := strings.Split(out, "\n")
			if err != nil || len(lines) != 2 || lines[0] != e.User {
				t.Fatalf("%v: %q, want socket owner %s and a pid", err, out, e.User)
			}
			mu.Lock()
			defer mu.Unlock()
			if _, err := strconv.Atoi(lines[1]); err != nil || pids[lines[1]] != "" {
				t.Errorf("supervisord pid %q (already seen on %q)", lines[1], pids[lines[1]])
			}
			pids[lines[1]] = h.Name
		})
	})

	t.Run("same app port on every host", func(t *testing.T) {
		eachHost(t, e, func(t *testing.T, h *Host) {
			www := filepath.Join(h.Root, "srv", "www")
			if err := os.MkdirAll(www, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(www, "whoami.txt"), []byte(h.Name), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := runSSH(t, h, e.KnownHosts, "supervisorctl -s "+FleetSupervisorURL+" start web"); err != nil {
				t.Fatalf("start web: %v: %s", err, out)
			}
			web := tunnelClient(sshClient(t, e, h), "tcp", "127.0.0.1:8088")
			var body []byte
			var err error
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				var resp *http.Response
				if resp, err = web.Get("http://127.0.0.1:8088/whoami.txt"); err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					break
				}
			}
			if err != nil || string(body) != h.Name {
				t.Errorf("GET 127.0.0.1:8088 = %q, %v; want %q", body, err, h.Name)
			}
		})
	})
}

// eachHost runs f for every host of e in parallel subtests named after the
// hosts, and returns when all are done.
func eachHost(t *testing.T, e *Env, f func(t *testing.T, h *Host)) {
	t.Helper()
	t.Run("hosts", func(t *testing.T) {
		for _, h := range e.Hosts {
			t.Run(h.Name, func(t *testing.T) {
				t.Parallel()
				f(t, h)
			})
		}
	})
}

func TestFleet_SupervisorInetAndAuth(t *testing.T) {
	const user, password = "ops", "fleet-secret"
	e := Fleet(t, FleetOptions{Hosts: 1, SupervisorInet: true, SupervisorUser: user, SupervisorPassword: password})
	c := sshClient(t, e, e.Hosts[0])
	tests := []struct {
		name, network, addr, password string
		want                          int
	}{
		{name: "unix socket", network: "unix", addr: "/srv/run/supervisor.sock", password: password, want: http.StatusOK},
		{name: "inet 127.0.0.1:9001", network: "tcp", addr: "127.0.0.1:9001", password: password, want: http.StatusOK},
		{name: "unix socket wrong password", network: "unix", addr: "/srv/run/supervisor.sock", password: "nope", want: http.StatusUnauthorized},
		{name: "inet wrong password", network: "tcp", addr: "127.0.0.1:9001", password: "nope", want: http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `<?xml version="1.0"?><methodCall><methodName>supervisor.getState</methodName></methodCall>`
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://localhost/RPC2", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth(user, tc.password)
			resp, err := tunnelClient(c, tc.network, tc.addr).Do(req)
			if err != nil {
				t.Fatalf("getState through ssh to %s %s: %v", tc.network, tc.addr, err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestFleet_StopAndRestartKeepSrv(t *testing.T) {
	e := Fleet(t, FleetOptions{Hosts: 1})
	h := e.Hosts[0]
	supervisordPID := func() string {
		t.Helper()
		out, err := h.Exec(t.Context(), "cat", "/srv/run/supervisord.pid").Output()
		if err != nil {
			t.Fatalf("Exec cat supervisord.pid: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	before := supervisordPID()
	if err := os.WriteFile(filepath.Join(h.Root, "srv", "kept"), []byte("yes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if out, err := h.Exec(t.Context(), "true").CombinedOutput(); err == nil || !strings.Contains(string(out), "not running") {
		t.Errorf("Exec on a stopped host = %v, %q; want a 'not running' failure", err, out)
	}
	if _, err := runSSH(t, h, e.KnownHosts, "true"); err == nil {
		t.Errorf("ssh to a stopped host succeeded")
	}
	if err := h.Restart(); err != nil {
		t.Fatal(err)
	}
	if out, err := runSSH(t, h, e.KnownHosts, "cat /srv/kept"); err != nil || out != "yes" {
		t.Errorf("after restart /srv/kept = %q, %v", out, err)
	}
	if after := supervisordPID(); after == before {
		t.Errorf("supervisord pid %s unchanged by the restart", after)
	}
}

// fleetResidue is what a fleet creates on the machine, to check that none
// of it is left after Close.
type fleetResidue struct {
	netns, veths []string
	nsInodes     map[uint64]bool
	dir, lock    string
}

func residueOf(t *testing.T, e *Env) fleetResidue {
	t.Helper()
	f := e.place.(*fleet)
	r := fleetResidue{dir: e.Dir, lock: f.owner.path, nsInodes: map[uint64]bool{}}
	for _, n := range f.hosts {
		r.netns = append(r.netns, n.netns)
		r.veths = append(r.veths, n.veth)
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netnsDir, n.netns), &st); err != nil {
			t.Fatal(err)
		}
		r.nsInodes[st.Ino] = true
	}
	return r
}

// check reports everything of r that still exists.
func (r fleetResidue) check(t *testing.T) {
	t.Helper()
	for _, name := range r.netns {
		if _, err := os.Stat(filepath.Join(netnsDir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s left: %v", name, err)
		}
	}
	for _, name := range r.veths {
		if _, err := net.InterfaceByName(name); err == nil {
			t.Errorf("veth %s left", name)
		}
	}
	for _, pid := range procPIDs() {
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &st) == nil && r.nsInodes[st.Ino] {
			t.Errorf("process %d left in a fleet namespace", pid)
		}
	}
	for _, path := range []string{r.dir, r.lock} {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", path, err)
		}
	}
}

func TestFleet_CloseLeavesNothingBehind(t *testing.T) {
	e := Fleet(t, FleetOptions{Hosts: 2, Programs: `
[program:sleeper]
command=/bin/sh -c "setsid /bin/sleep 1001 & exec /bin/sleep 1000"
user=` + TestUserName + `
startsecs=0
`})
	for _, h := range e.Hosts {
		if out, err := runSSH(t, h, e.KnownHosts, "setsid sleep 1002 </dev/null >/dev/null 2>&1 &"); err != nil {
			t.Fatalf("ssh: %v: %s", err, out)
		}
		if err := h.Exec(t.Context(), "sh", "-c", "setsid sleep 1003 </dev/null >/dev/null 2>&1 &").Run(); err != nil {
			t.Fatalf("Exec: %v", err)
		}
	}
	extra := e.StartHost(t, "extra")
	if out, err := runSSH(t, extra, trustOnly(t, extra), "test -S /srv/run/supervisor.sock && echo $SKIFF_TESTENV_HOST"); err != nil || out != "extra" {
		t.Fatalf("ssh to a StartHost host of a fleet = %q, %v", out, err)
	}
	r := residueOf(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	r.check(t)
}

func TestFleet_NoSupervisordRunsSSHOnly(t *testing.T) {
	e := Fleet(t, FleetOptions{Hosts: 1, NoSupervisord: true})
	h := e.Hosts[0]
	if h.SupervisorURL() != "" {
		t.Errorf("SupervisorURL() = %q, want none", h.SupervisorURL())
	}
	out, err := runSSH(t, h, e.KnownHosts, "test -e /srv/run/supervisor.sock && echo socket; echo $SKIFF_TESTENV_HOST")
	if err != nil || out != h.Name {
		t.Errorf("ssh = %q, %v; want only %q", out, err, h.Name)
	}
}

func TestFleet_FiftyHostsStartAndStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 50 hosts twice; skipped under -short")
	}
	const n = 50
	tests := []struct {
		name string
		opts FleetOptions
	}{
		{name: "sshd and supervisord", opts: FleetOptions{Hosts: n, Programs: webProgram}},
		{name: "sshd only", opts: FleetOptions{Hosts: n, NoSupervisord: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			begin := time.Now()
			e, err := StartFleet(ctx, tc.opts)
			if errors.Is(err, ErrMissingTool) || errors.Is(err, ErrNoNamespaces) {
				SkipOrFail(t, err.Error())
			}
			if err != nil {
				t.Fatal(err)
			}
			started := time.Since(begin)
			closed := false
			defer func() {
				if !closed {
					e.Close()
				}
			}()
			r := residueOf(t, e)
			if len(e.Hosts) != n {
				t.Fatalf("%d hosts, want %d", len(e.Hosts), n)
			}
			var wg sync.WaitGroup
			for _, h := range []*Host{e.Hosts[0], e.Hosts[n/2], e.Hosts[n-1]} {
				wg.Go(func() {
					want, remote := h.Name, "echo $SKIFF_TESTENV_HOST"
					if !tc.opts.NoSupervisord {
						want, remote = "STOPPED", "supervisorctl -s "+FleetSupervisorURL+" status web"
					}
					if out, err := runSSH(t, h, e.KnownHosts, remote); !strings.Contains(out, want) {
						t.Errorf("%s: %s = %v, %q", h.Name, remote, err, out)
					}
				})
			}
			wg.Wait()
			begin = time.Now()
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			closed = true
			t.Logf("%d fleet hosts started in %v (%.1f hosts/s), stopped in %v",
				n, started.Round(time.Millisecond), float64(n)/started.Seconds(), time.Since(begin).Round(time.Millisecond))
			r.check(t)
		})
	}
}
