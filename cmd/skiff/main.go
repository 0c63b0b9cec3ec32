// Command skiff is an agentless SSH-push deploy tool: it reads hosts.toml, connects to the selected hosts over
// SSH and deploys, checks, rolls back and prunes applications on them. See docs/ARCHITECTURE.md for the whole picture.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitInterrupted is the exit code after a second SIGINT or SIGTERM, as a shell reports a SIGINT.
const exitInterrupted = 130

func main() {
	stopProfile := startProfiles(os.Stderr)
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal stops starting hosts; those in flight give up their step, switch back or remove
		// their new release, and unlock, each within a short deadline. The second exits at once.
		s := <-sigs
		fmt.Fprintf(os.Stderr, "skiff: %v: stopping; hosts in flight roll back and unlock (signal again to exit now)\n", s)
		cancel()
		s = <-sigs
		fmt.Fprintf(os.Stderr, "skiff: %v again: exiting now; locks may be left (see `skiff lock status`)\n", s)
		os.Exit(exitInterrupted)
	}()
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	signal.Stop(sigs)
	cancel()
	stopProfile()
	os.Exit(code)
}
