// Package testenv starts real daemons on loopback for skiff's integration
// tests: OpenSSH sshd hosts and supervisord. Nothing is mocked; the tests
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
// # Skip or fail
//
// A test that needs a tool that is not installed (sshd, supervisord, ...)
// is skipped, so that `go test` works on any developer machine. Under CI
// (the environment variable CI=true) the same situation fails the test:
// CI must run every integration test, and a silent skip would hide a
// broken image. Shared applies this policy; SkipOrFail applies it to any
// other missing dependency. Errors other than a missing tool always fail.
package testenv
