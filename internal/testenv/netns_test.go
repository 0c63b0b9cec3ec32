package testenv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseFleetSubnet_Validates(t *testing.T) {
	tests := []struct {
		name, subnet string
		wantSlots    int
		wantErr      bool
	}{
		{name: "default range", subnet: DefaultFleetSubnet, wantSlots: 16384},
		{name: "a single /30", subnet: "10.9.8.4/30", wantSlots: 1},
		{name: "host bits set", subnet: "10.231.0.1/16", wantErr: true},
		{name: "smaller than a /30", subnet: "10.0.0.0/31", wantErr: true},
		{name: "IPv6", subnet: "fd00::/64", wantErr: true},
		{name: "not a CIDR", subnet: "10.231.0.0", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseFleetSubnet(tc.subnet)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseFleetSubnet(%q) error = %v, want error %v", tc.subnet, err, tc.wantErr)
			}
			if err == nil && s.slots != tc.wantSlots {
				t.Errorf("slots = %d, want %d", s.slots, tc.wantSlots)
			}
		})
	}
}

func TestFleetSubnet_AddrsAndVethNames(t *testing.T) {
	s, err := parseFleetSubnet(DefaultFleetSubnet)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                        string
		slot                        int
		network, outer, inner, veth string
	}{
		{name: "first slot", slot: 0, network: "10.231.0.0", outer: "10.231.0.1", inner: "10.231.0.2", veth: "skiff0ae70000"},
		{name: "crosses into the next /24", slot: 65, network: "10.231.1.4", outer: "10.231.1.5", inner: "10.231.1.6", veth: "skiff0ae70104"},
		{name: "last slot", slot: 16383, network: "10.231.255.252", outer: "10.231.255.253", inner: "10.231.255.254", veth: "skiff0ae7fffc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			network, outer, inner := s.addrs(tc.slot)
			got := []string{network.String(), outer.String(), inner.String(), vethName(network)}
			if want := []string{tc.network, tc.outer, tc.inner, tc.veth}; !reflect.DeepEqual(got, want) {
				t.Errorf("slot %d = %v, want %v", tc.slot, got, want)
			}
			if len(tc.veth) > 15 {
				t.Errorf("veth name %q longer than IFNAMSIZ-1", tc.veth)
			}
			if slot, ok := s.slotOf(tc.veth); !ok || slot != tc.slot {
				t.Errorf("slotOf(%q) = %d, %v", tc.veth, slot, ok)
			}
		})
	}
	for _, name := range []string{"eth0", "skiff0a000004", "skiff0ae70001", "skiffzz", "skiff0ae7000400"} {
		if slot, ok := s.slotOf(name); ok {
			t.Errorf("slotOf(%q) = %d, want no slot", name, slot)
		}
	}
}

func TestOverlappingRoutes_IgnoresDefaultAndFleetVeths(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("testdata/proc_net_route is a little-endian machine's table")
	}
	tests := []struct {
		name, subnet string
		want         []string
	}{
		{name: "overlaps a /24 and a /8", subnet: "10.231.0.0/16", want: []string{"10.231.5.0/24 dev eth2", "10.0.0.0/8 dev eth1"}},
		{name: "contains docker's network", subnet: "172.16.0.0/12", want: []string{"172.17.0.0/16 dev docker0"}},
		{name: "free range", subnet: "198.18.0.0/15", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "proc_net_route"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, subnet, err := net.ParseCIDR(tc.subnet)
			if err != nil {
				t.Fatal(err)
			}
			if got := overlappingRoutes(f, subnet); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("overlappingRoutes(%s) = %q, want %q", tc.subnet, got, tc.want)
			}
		})
	}
}

func TestFleetSupervisordConfig_Renders(t *testing.T) {
	const password = "plain-secret"
	tests := []struct {
		name        string
		opts        FleetOptions
		want, avoid []string
	}{
		{
			name: "socket only",
			opts: FleetOptions{Programs: "[program:web]\ncommand=/bin/true"},
			want: []string{"[unix_http_server]\nfile=/srv/run/supervisor.sock\nchmod=0700\nchown=1001:1002\n",
				"[supervisord]\nuser=root\n", "childlogdir=/srv/run/supervisor\n", "serverurl=unix:///srv/run/supervisor.sock\n",
				"\n[program:web]\ncommand=/bin/true\n"},
			avoid: []string{"inet_http_server", "username="},
		},
		{
			name: "inet server and auth",
			opts: FleetOptions{SupervisorInet: true, SupervisorUser: "ops", SupervisorPassword: password},
			want: []string{"[inet_http_server]\nport=127.0.0.1:9001\nusername=ops\npassword={SHA}",
				"chown=1001:1002\nusername=ops\npassword={SHA}"},
			avoid: []string{password},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := fleetSupervisordConfig(tc.opts, 1001, 1002)
			for _, w := range tc.want {
				if !strings.Contains(conf, w) {
					t.Errorf("config lacks %q:\n%s", w, conf)
				}
			}
			for _, a := range tc.avoid {
				if strings.Contains(conf, a) {
					t.Errorf("config contains %q:\n%s", a, conf)
				}
			}
		})
	}
}

// needFleetTools skips (or fails under CI) unless fleets can run here.
func needFleetTools(t *testing.T) fleetTools {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, ErrNoNamespaces.Error())
	}
	tools, err := findFleetTools()
	if err != nil {
		SkipOrFail(t, err.Error())
	}
	return tools
}

func TestStartFleet_RejectsBadOptions(t *testing.T) {
	needFleetTools(t)
	tests := []struct {
		name string
		opts FleetOptions
		want string
	}{
		{name: "negative host count", opts: FleetOptions{Hosts: -1}, want: "negative host count"},
		{name: "IPv6 subnet", opts: FleetOptions{Subnet: "fd00::/64"}, want: "not IPv4"},
		{name: "colon in supervisor user", opts: FleetOptions{SupervisorUser: "a:b"}, want: "SupervisorUser"},
		{
			name: "programs supervisord refuses",
			opts: FleetOptions{Hosts: 1, Programs: "[program:x]\ncommand=/bin/true\nuser=no-such-user-skiff\n"},
			want: "supervisord exited",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := StartFleet(t.Context(), tc.opts)
			if err == nil {
				e.Close()
				t.Fatal("StartFleet succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// inNetns waits until pid has entered the named network namespace.
func inNetns(t *testing.T, pid int, name string) {
	t.Helper()
	var want syscall.Stat_t
	if err := syscall.Stat(filepath.Join(netnsDir, name), &want); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &st) == nil && st.Ino == want.Ino {
			return
		}
	}
	t.Fatalf("process %d never entered namespace %s", pid, name)
}

func TestSweepStale_RemovesOnlyWhatDeadOwnersLeft(t *testing.T) {
	tools := needFleetTools(t)
	tests := []struct {
		name     string
		owner    string // "dead", "live" or "none" (no lock file)
		wantGone bool
	}{
		{name: "dead owner: swept", owner: "dead", wantGone: true},
		{name: "live owner: kept", owner: "live", wantGone: false},
		{name: "no lock file: kept", owner: "none", wantGone: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			token := strings.ToLower(rand.Text()[:8])
			ns := "skiff-" + token + "-1"
			if err := runIP(ctx, tools.ip, "", "netns", "add", ns); err != nil {
				t.Fatal(err)
			}
			dir, err := os.MkdirTemp("", "skiff-testenv-")
			if err != nil {
				t.Fatal(err)
			}
			lockPath := filepath.Join(ownerDir, token+".lock")
			t.Cleanup(func() {
				_ = killInNetns([]string{ns})
				_ = runIP(context.Background(), tools.ip, "", "netns", "del", ns)
				_ = os.RemoveAll(dir)
				_ = os.Remove(lockPath)
			})
			sleeper := exec.Command(tools.ip, "netns", "exec", ns, "sleep", "300")
			if err := sleeper.Start(); err != nil {
				t.Fatal(err)
			}
			go sleeper.Wait() // reaps it once it is killed
			inNetns(t, sleeper.Process.Pid, ns)
			switch tc.owner {
			case "live":
				l, err := lockOwner(token, dir)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.release() })
			case "dead":
				l, err := lockOwner(token, dir)
				if err != nil {
					t.Fatal(err)
				}
				l.f.Close() // what the kernel does when the owner dies
			}

			sweepStale(ctx, tools.ip, "sweeper0")

			_, nsErr := os.Stat(filepath.Join(netnsDir, ns))
			_, dirErr := os.Stat(dir)
			_, lockErr := os.Stat(lockPath)
			got := map[string]bool{
				"namespace": errors.Is(nsErr, os.ErrNotExist),
				"process":   !alive(sleeper.Process.Pid),
				"env dir":   errors.Is(dirErr, os.ErrNotExist),
				"lock file": errors.Is(lockErr, os.ErrNotExist),
			}
			for what, gone := range got {
				want := tc.wantGone
				if what == "lock file" && tc.owner == "none" {
					want = true // there never was one
				}
				if gone != want {
					t.Errorf("%s gone = %v, want %v", what, gone, want)
				}
			}
		})
	}
}
