package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/remote"
	"github.com/urfave/cli/v2"
)

// hostFunc does one command's work on one connected host and fills in its result.
type hostFunc func(ctx context.Context, s *session, h *inventory.Host, conn *remote.Conn, r *hostResult) error

// onHosts connects to every selected host (one pooled connection each) and runs fn there, --parallel at once.
func onHosts(c *cli.Context, command string, fn hostFunc) error {
	s, err := newSession(c)
	if err != nil {
		return err
	}
	defer s.close()
	hosts, err := s.selectHosts()
	if err != nil {
		return err
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	s.out.setHosts(names)
	results := make([]hostResult, len(hosts))
	errs := deploy.ForEach(c.Context, len(hosts), s.parallelOr(20), func(ctx context.Context, i int) error {
		h, r := hosts[i], &results[i]
		start := time.Now()
		err := func() error {
			conn, err := s.pool.Get(ctx, deploy.Target(s.inv, h))
			if err != nil {
				return err
			}
			r.HostKey = conn.HostKeyFingerprint()
			return fn(ctx, s, h, conn, r)
		}()
		r.Host, r.OK, r.DurationMS = h.Name, err == nil, millis(time.Since(start))
		if err != nil {
			r.Error = err.Error()
		}
		return err
	})
	for i := range errs {
		if errs[i] != nil && results[i].Host == "" {
			results[i] = hostResult{Host: hosts[i].Name, Error: errs[i].Error()}
		}
	}
	return s.out.finish(command, results, errs)
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "reach every selected host: SSH, host key, user, docker/compose, supervisord",
		Action: func(c *cli.Context) error {
			return onHosts(c, "check", func(ctx context.Context, s *session, h *inventory.Host, conn *remote.Conn, r *hostResult) error {
				ctx, cancel := context.WithTimeout(ctx, checkTimeout)
				defer cancel()
				facts, err := deploy.Probe(ctx, conn, deploy.NeedsOf(s.inv, h.Name))
				r.Check = facts
				if facts != nil {
					r.summary = factsSummary(facts, r.HostKey)
				}
				return err
			})
		},
	}
}

func factsSummary(f *deploy.Facts, key string) string {
	parts := []string{"user=" + f.User, fmt.Sprintf("os=%q", f.OS), "key=" + key}
	if f.Docker != "" {
		parts = append(parts, "docker="+f.Docker)
	}
	if f.Compose != "" {
		parts = append(parts, fmt.Sprintf("compose=%q", f.Compose))
	}
	if len(f.Supervisord) > 0 {
		parts = append(parts, "supervisord="+strings.Join(f.Supervisord, ","))
	}
	return strings.Join(parts, " ")
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command on the selected hosts",
		ArgsUsage: "-- CMD [ARG…]",
		Action: func(c *cli.Context) error {
			argv := c.Args().Slice()
			if len(argv) == 0 {
				return usagef("exec: no command given (write: skiff exec -- CMD …)")
			}
			cmd := remote.Command{Argv: argv}
			if len(argv) == 1 {
				// One word with shell syntax in it is a script, as with ssh HOST 'a && b'.
				cmd = remote.Command{Script: argv[0]}
			}
			return onHosts(c, "exec", func(ctx context.Context, s *session, h *inventory.Host, conn *remote.Conn, r *hostResult) error {
				var out, errOut keptOutput
				cmd := cmd
				cmd.Stdout = func(line string) { out.add(line); s.out.line(h.Name, "stdout", line) }
				cmd.Stderr = func(line string) { errOut.add(line); s.out.line(h.Name, "stderr", line) }
				_, err := conn.Run(ctx, cmd)
				status := 0
				var ee *remote.ExitError
				if errors.As(err, &ee) {
					status = ee.Status
				}
				if err == nil || ee != nil {
					r.ExitStatus = &status
				}
				r.Stdout, r.Stderr = out.String(), errOut.String()
				r.summary = fmt.Sprintf("exit %d", status)
				return err
			})
		},
	}
}

// checkTimeout bounds `skiff check` on one host: a handful of short probes.
const checkTimeout = time.Minute

// execKeep bounds what exec keeps of each output stream of a host for --json; every line is still printed.
const execKeep = 1 << 20

// keptOutput is one output stream of exec as kept for --json: up to execKeep bytes, then a count of the rest.
type keptOutput struct {
	b       strings.Builder
	dropped int64
}

func (k *keptOutput) add(line string) {
	if k.dropped > 0 || k.b.Len()+len(line)+1 > execKeep {
		k.dropped += int64(len(line) + 1)
		return
	}
	k.b.WriteString(line)
	k.b.WriteByte('\n')
}

func (k *keptOutput) String() string {
	if k.dropped == 0 {
		return k.b.String()
	}
	return k.b.String() + fmt.Sprintf("[skiff: %d more bytes not kept]\n", k.dropped)
}
