// Package testenv starts real daemons for skiff's integration tests: OpenSSH
// sshd hosts on loopback, supervisord, and fleets of hosts that each live in
// network and mount namespaces of their own. Nothing is mocked; the tests
// talk to the same programs a real target runs.
//
// # Using it from a test package
//
// Every package that uses the shared environment calls Main from TestMain,
// which runs the tests and then stops every daemon and removes every file:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
//	func TestDeploy_Something(t *testing.T) {
//		env := testenv.Shared(t) // h1, h2, h3, started once per package
//		inv := env.WriteInventory(t, "[apps.api]\nhosts = [\"h1\"]\n...")
//		// dial env.Host("h1").Addr as env.User with env.KeyFile, ...
//	}
//
// Shared hosts are used by every test of the package, possibly in parallel:
// do not stop them, and keep files under a directory of the test's own. A
// test that needs to stop, restart or distrust a host starts its own with
// Env.StartHost (or Env.StartHostWith, for other host key types or extra
// sshd_config lines), which is torn down in t.Cleanup. Start gives a whole
// environment of one's own (the caller Closes it).
//
// Each host is an sshd (run with -D as a child of the test process, in its
// own process group) listening on its own address 127.0.0.N and a free
// port, with a throwaway ed25519 host key, public key authentication only,
// the internal sftp subsystem and TCP and unix-socket forwarding. Every
// host accepts Env.KeyFile for Env.User; Env.KnownHosts trusts every host
// of Env.Hosts. Host.SSHArgs gives the system ssh client's arguments, and
// Host.LogFile sshd's VERBOSE log for failure messages. Host.Root is a
// directory owned by the login user that stands in for the host's file
// system.
//
// When the tests run as root, the login user is the unprivileged account
// skiff-test (TestUserName), created once on the machine with useradd and
// kept; otherwise it is the current user, and sshd runs unprivileged. The
// test processes and the hosts share one machine, so a test may check a
// host's files directly under Host.Root.
//
// Stopping a host (Host.Stop, Env.Close, Main) kills sshd, its connections
// and every process its sessions started, including those that daemonized
// (they are found by the SKIFF_TESTENV_TOKEN variable sshd sets in each
// session); no process is left behind. If the test binary dies instead,
// the kernel kills each sshd (parent-death signal).
//
// # Fleet mode
//
// Real targets share the same app path, supervisord address and app ports;
// fleet hosts do too (DESIGN.md, "Test hosts that look like a real fleet").
// StartFleet (or Fleet, per test, closed in t.Cleanup) needs root and gives
// each host its own network namespace skiff-TOKEN-N (TOKEN is unique per
// environment) joined to the test machine by a veth pair on a /30 of
// FleetOptions.Subnet (DefaultFleetSubnet, 10.231.0.0/16): the machine's
// side is .1, the host's side (eth0 inside) is .2 and is Host.IP; sshd
// listens there on port 22, so Host.Addr is "10.231.x.y:22", the inventory
// says port = 22 and known_hosts lines are "10.231.x.y ssh-ed25519 ...".
// Parallel test binaries take different /30s: the veth of each is named
// after its network (skiffXXXXXXXX), and the kernel refuses a duplicate
// name. A subnet that overlaps one of the machine's routes is refused.
//
// Inside its network namespace each host boots from one shell run under
// "unshare --mount --propagation private": it bind-mounts Host.Root+"/srv"
// over /srv (creating the empty directory /srv on the machine if it is
// missing; the machine's own /srv is never written to), starts supervisord
// and then becomes sshd, so both daemons see the same private /srv and the
// same 127.0.0.1. Every host therefore has, at the same paths and ports:
//
//	/srv                         Host.Root+"/srv" on the test machine, owned by the login user
//	/srv/run/supervisor.sock     supervisord's socket (FleetSupervisorURL), owned by the login user
//	127.0.0.1:9001               supervisord's inet server, with FleetOptions.SupervisorInet
//	/srv/run/supervisor/         supervisord's log and its programs' logs
//	127.0.0.1:8088, ...          whatever FleetOptions.Programs listen on
//
// supervisord runs as root, as on a real server, with the same
// configuration on every host: FleetOptions.Programs' [program:x] sections
// (user=skiff-test, the login user TestUserName, to run as that user).
// Tests see a host's files under Host.Root+"/srv", reach its daemons over
// SSH (tunnels to 127.0.0.1:PORT or /srv/run/supervisor.sock, like skiff)
// and run commands inside its namespaces, as root, with Host.Exec.
//
// Start is parallel, bounded by FleetOptions.Parallel (default two hosts per
// CPU) and CPU-bound: supervisord's Python start-up (about 0.1 s of CPU) is
// most of a host's cost, so fifty hosts take a few seconds on two idle
// CPUs. FleetOptions.NoSupervisord starts sshd alone, several times faster,
// for tests that need no supervisord.
//
// Host.Stop takes the host down like a machine: sshd, supervisord, their
// programs and everything the host's sessions or Exec started; Restart
// boots it again (a fresh supervisord, the same /srv). Env.Close also
// kills anything else left in the namespaces, deletes the veths and
// namespaces and removes Dir: nothing remains in "ip netns list", "ip link"
// or the process table. A fleet holds a lock on /run/skiff-testenv/TOKEN.lock
// while it lives; when a test binary dies without closing its fleet, the
// next StartFleet finds that lock free and removes what the dead fleet left
// (its namespaces, the processes in them and its Dir). Namespaces whose
// owner is unknown are never touched.
//
// Without root, or where namespaces are not allowed, StartFleet returns
// ErrNoNamespaces and Fleet skips (fails under CI=true); callers that can
// do without a fleet fall back to Start's loopback hosts.
//
// # Skip or fail
//
// A test that needs a tool that is not installed (sshd, supervisord, ...)
// is skipped, so that `go test` works on any developer machine. Under CI
// (the environment variable CI=true) the same situation fails the test:
// CI must run every integration test, and a silent skip would hide a
// broken image. Shared applies this policy; SkipOrFail applies it to any
// other missing dependency. Errors other than a missing tool always fail.
package testenv
