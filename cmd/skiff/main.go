// Command skiff is an agentless SSH-push deploy tool: it reads hosts.toml, connects to the selected hosts over
// SSH and deploys, checks, rolls back and prunes applications on them. See docs/ARCHITECTURE.md for the whole picture.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	stopProfile := startCPUProfile(os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	stopProfile()
	os.Exit(code)
}
