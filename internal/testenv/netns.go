package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// netnsDir is where iproute2 keeps named network namespaces, and ownerDir
// where fleets keep the lock files that tell a live fleet from the leftovers
// of a test binary that died.
const (
	netnsDir = "/run/netns"
	ownerDir = "/run/skiff-testenv"
)

// vethPrefix starts the name of the root side of every fleet host's veth
// pair; 8 hex digits of the host's /30 network follow, which keeps the name
// within the kernel's 15 bytes and makes it unique across test binaries.
const vethPrefix = "skiff"

// fleetNetns matches the namespaces fleets create: skiff-TOKEN-N.
var fleetNetns = regexp.MustCompile(`^skiff-([a-z2-7]{8})-([0-9]+)$`)

// ErrNoNamespaces reports that this machine or user cannot create network
// namespaces (the tests do not run as root, or a container forbids it).
// Fleet skips on it, or fails under CI=true.
var ErrNoNamespaces = errors.New("network namespaces not available (fleet hosts need root)")

// runIP runs the ip tool with args, feeding it stdin (for -batch -), and
// folds its output into the error.
func runIP(ctx context.Context, ip, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, ip, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// fleetSubnet is the IPv4 range that fleet hosts take their /30 networks
// from: slot s is network base+4s, with .1 on the test machine's side and
// .2 inside the host.
type fleetSubnet struct {
	net   *net.IPNet
	slots int
}

// parseFleetSubnet parses an IPv4 CIDR range of at least one /30.
func parseFleetSubnet(s string) (fleetSubnet, error) {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		return fleetSubnet{}, fmt.Errorf("testenv: fleet subnet: %w", err)
	}
	ones, bits := n.Mask.Size()
	if ip.To4() == nil || bits != 32 {
		return fleetSubnet{}, fmt.Errorf("testenv: fleet subnet %s is not IPv4", s)
	}
	if ones > 30 {
		return fleetSubnet{}, fmt.Errorf("testenv: fleet subnet %s is smaller than a /30", s)
	}
	if !ip.Equal(n.IP) {
		return fleetSubnet{}, fmt.Errorf("testenv: fleet subnet %s has host bits set (network is %s)", s, n)
	}
	return fleetSubnet{net: n, slots: 1 << (30 - ones)}, nil
}

// addrs returns slot's network address, the test machine's side and the
// host's side.
func (s fleetSubnet) addrs(slot int) (network, outer, inner net.IP) {
	base := binary.BigEndian.Uint32(s.net.IP.To4()) + uint32(4*slot)
	at := func(off uint32) net.IP {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, base+off)
		return ip
	}
	return at(0), at(1), at(2)
}

// slotOf returns the slot of a root-side veth name, if it names a network
// of s.
func (s fleetSubnet) slotOf(veth string) (int, bool) {
	raw, err := hex.DecodeString(strings.TrimPrefix(veth, vethPrefix))
	if !strings.HasPrefix(veth, vethPrefix) || err != nil || len(raw) != 4 {
		return 0, false
	}
	ip := net.IP(raw)
	if !s.net.Contains(ip) {
		return 0, false
	}
	off := binary.BigEndian.Uint32(raw) - binary.BigEndian.Uint32(s.net.IP.To4())
	if off%4 != 0 {
		return 0, false
	}
	return int(off / 4), true
}

// vethName names the root side of the veth pair of a /30 network.
func vethName(network net.IP) string {
	return vethPrefix + hex.EncodeToString(network.To4())
}

// overlappingRoutes lists the routes of a /proc/net/route table that
// overlap subnet, other than the default route and routes over fleet veths:
// fleet addresses must never shadow a network the machine really uses.
func overlappingRoutes(table io.Reader, subnet *net.IPNet) []string {
	var out []string
	sc := bufio.NewScanner(table)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] == "Iface" || strings.HasPrefix(f[0], vethPrefix) {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		mask, err2 := strconv.ParseUint(f[7], 16, 32)
		if err1 != nil || err2 != nil || mask == 0 {
			continue
		}
		// The kernel prints the addresses as native-endian integers.
		route := &net.IPNet{IP: make(net.IP, 4), Mask: make(net.IPMask, 4)}
		binary.NativeEndian.PutUint32(route.IP, uint32(dst))
		binary.NativeEndian.PutUint32(route.Mask, uint32(mask))
		if route.Contains(subnet.IP) || subnet.Contains(route.IP) {
			out = append(out, route.String()+" dev "+f[0])
		}
	}
	return out
}

// checkSubnetFree fails when subnet overlaps a route of the machine's.
func checkSubnetFree(subnet *net.IPNet) error {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return fmt.Errorf("testenv: read routes: %w", err)
	}
	defer f.Close()
	if routes := overlappingRoutes(f, subnet); len(routes) > 0 {
		return fmt.Errorf("testenv: fleet subnet %s overlaps the machine's routes %s; set FleetOptions.Subnet",
			subnet, strings.Join(routes, ", "))
	}
	return nil
}

// takenSlots lists the slots of subnet whose veth exists already, created
// by this or another test binary.
func takenSlots(s fleetSubnet) map[int]bool {
	taken := map[int]bool{}
	ifs, err := net.Interfaces()
	if err != nil {
		return taken
	}
	for _, i := range ifs {
		if slot, ok := s.slotOf(i.Name); ok {
			taken[slot] = true
		}
	}
	return taken
}

// killInNetns SIGKILLs every process inside the named network namespaces
// until none is left, whatever it was started by.
func killInNetns(names []string) error {
	type nsID struct{ dev, ino uint64 }
	want := map[nsID]bool{}
	for _, name := range names {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netnsDir, name), &st); err == nil {
			want[nsID{uint64(st.Dev), st.Ino}] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	self := os.Getpid()
	var left []int
	for round := 0; round < 100; round++ {
		left = left[:0]
		for _, pid := range procPIDs() {
			var st syscall.Stat_t
			// A zombie has no namespaces any more; Stat fails for it.
			if pid == self || syscall.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &st) != nil {
				continue
			}
			if want[nsID{uint64(st.Dev), st.Ino}] {
				left = append(left, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if len(left) == 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("testenv: processes %v survive SIGKILL in namespaces %v", left, names)
}

// ownerLock is the lock file that marks a fleet as alive: its owner holds
// an exclusive flock on it for the fleet's lifetime, and the kernel drops
// the lock when the owner dies, however it dies.
type ownerLock struct {
	path string
	f    *os.File
}

// lockOwner creates ownerDir/token.lock holding the path of the fleet's
// environment directory, locked before it appears under its name.
func lockOwner(token, envDir string) (*ownerLock, error) {
	var f *os.File
	var err error
	// Another fleet's release may remove the empty directory in between.
	for attempt := 0; attempt < 10; attempt++ {
		if err = os.MkdirAll(ownerDir, 0o700); err != nil {
			return nil, fmt.Errorf("testenv: %w", err)
		}
		if f, err = os.CreateTemp(ownerDir, ".new-"); !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("testenv: owner lock: %w", err)
	}
	l := &ownerLock{path: filepath.Join(ownerDir, token+".lock"), f: f}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		_, err = f.WriteString(envDir + "\n")
	}
	if err == nil {
		err = os.Rename(f.Name(), l.path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		f.Close()
		return nil, fmt.Errorf("testenv: owner lock: %w", err)
	}
	return l, nil
}

// release removes the lock file, drops the lock and removes ownerDir if
// no other fleet uses it.
func (l *ownerLock) release() error {
	err := os.Remove(l.path)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	_ = os.Remove(ownerDir) // fails while other lock files exist
	if err != nil {
		return fmt.Errorf("testenv: release owner lock: %w", err)
	}
	return nil
}

// sweepStale removes what fleets of dead test binaries left behind: the
// processes in their namespaces, the namespaces (their veths go with them)
// and their environment directories. A fleet counts as dead only when its
// lock file exists and nobody holds its lock; namespaces without a lock
// file are left alone. Cleaning is best effort: what fails now is retried
// by the next fleet.
func sweepStale(ctx context.Context, ip, ownToken string) {
	byToken := map[string][]string{}
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			if m := fleetNetns.FindStringSubmatch(e.Name()); m != nil {
				byToken[m[1]] = append(byToken[m[1]], e.Name())
			}
		}
	}
	locks, _ := filepath.Glob(filepath.Join(ownerDir, "*.lock"))
	for _, path := range locks {
		token := strings.TrimSuffix(filepath.Base(path), ".lock")
		if token == ownToken {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // alive
			continue
		}
		dir, _ := io.ReadAll(io.LimitReader(f, 4096))
		if names := byToken[token]; len(names) > 0 {
			_ = killInNetns(names)
			var batch strings.Builder
			for _, n := range names {
				fmt.Fprintf(&batch, "netns del %s\n", n)
			}
			_ = runIP(ctx, ip, batch.String(), "-force", "-batch", "-")
		}
		removeEnvDir(string(bytes.TrimSpace(dir)))
		_ = os.Remove(path)
		f.Close()
	}
}

// removeEnvDir removes a dead fleet's environment directory, but only if it
// looks like one that StartFleet made.
func removeEnvDir(dir string) {
	if dir == "" || filepath.Dir(dir) != filepath.Clean(os.TempDir()) ||
		!strings.HasPrefix(filepath.Base(dir), "skiff-testenv-") {
		return
	}
	_ = os.RemoveAll(dir)
}
