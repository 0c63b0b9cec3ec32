package deploy

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/remote"
)

// containerPoll is how often a service's containers are inspected while they start.
const containerPoll = 250 * time.Millisecond

// containerLogLines is how many lines of a failed container's output go to the deploy's log.
const containerLogLines = 20

// serviceContainers lists and inspects the containers of the app's service.
func (r *imageRun) serviceContainers(ctx context.Context) ([]compose.Container, error) {
	return ServiceContainers(ctx, r.c, r.proj.Name, r.app.Service)
}

// ServiceContainers returns the containers of one compose service on a host, found by compose's labels.
func ServiceContainers(ctx context.Context, c HostConn, project, service string) ([]compose.Container, error) {
	argv, err := compose.ServiceContainers(project, service)
	if err != nil {
		return nil, err
	}
	res, err := c.Run(ctx, remote.Command{Argv: argv, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	ids, err := compose.ParseIDs(res.Stdout)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	argv, err = compose.InspectContainers(ids)
	if err != nil {
		return nil, err
	}
	res, err = c.Run(ctx, remote.Command{Argv: argv, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("inspect containers: %w", err)
	}
	return compose.ParseContainers(res.Stdout)
}

// checkTimeout is the app's check.timeout, 30s unless set.
func (r *imageRun) checkTimeout() time.Duration {
	if t := r.app.Check.Timeout.Duration; t > 0 {
		return t
	}
	return 30 * time.Second
}

// waitContainers waits until every container of the service runs the pinned image and is running (and
// healthy, when it has a healthcheck), then until every check port it publishes accepts connections inside
// the container. Docker's userland proxy accepts on a published host port even when nothing listens behind
// it, so only the container's own address proves that the app listens.
func (r *imageRun) waitContainers(ctx context.Context, pinned compose.Reference) ([]compose.Container, error) {
	timeout := r.checkTimeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var why string
	for {
		ctrs, err := r.serviceContainers(ctx)
		if err != nil && ctx.Err() == nil {
			return nil, err
		}
		if err == nil {
			ready, reason, fatal := assessContainers(ctrs, pinned.String(), r.app.Service)
			if fatal != nil {
				r.logContainers(ctx, ctrs)
				return ctrs, fatal
			}
			if ready {
				return ctrs, r.waitContainerPorts(ctx, ctrs, timeout)
			}
			why = reason
		}
		select {
		case <-ctx.Done():
			r.logContainers(context.WithoutCancel(ctx), ctrs)
			return ctrs, fmt.Errorf("service %s not ready within %s: %s", r.app.Service, timeout, why)
		case <-time.After(containerPoll):
		}
	}
}

// assessContainers decides, from one inspection, whether a service's containers are ready, still starting
// (reason says why) or failed for good (fatal).
func assessContainers(ctrs []compose.Container, pinned, service string) (ready bool, reason string, fatal error) {
	if len(ctrs) == 0 {
		return false, "", fmt.Errorf("service %s has no container after up", service)
	}
	for _, c := range ctrs {
		if c.Image != pinned {
			return false, "", fmt.Errorf("container %s (%s) runs %s, not the pinned %s", c.Short(), c.Name, c.Image, pinned)
		}
		switch c.Status {
		case "exited", "dead":
			return false, "", fmt.Errorf("container %s (%s) %s with code %d%s", c.Short(), c.Name, c.Status, c.ExitCode, stateDetail(c))
		case "running":
			switch c.Health {
			case "", "healthy":
				continue
			case "unhealthy":
				return false, "", fmt.Errorf("container %s (%s) is unhealthy: %s", c.Short(), c.Name, orNone(oneLineOf(c.HealthOutput)))
			}
			reason = fmt.Sprintf("container %s (%s) is running, health %s", c.Short(), c.Name, c.Health)
		default:
			reason = fmt.Sprintf("container %s (%s) is %s (restarts %d, last exit code %d)", c.Short(), c.Name, c.Status, c.RestartCount, c.ExitCode)
		}
		return false, reason, nil
	}
	return true, "", nil
}

func stateDetail(c compose.Container) string {
	var parts []string
	if c.OOMKilled {
		parts = append(parts, "killed for lack of memory")
	}
	if c.Error != "" {
		parts = append(parts, oneLineOf(c.Error))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func oneLineOf(s string) string { return strings.Join(strings.Fields(s), " ") }

// waitContainerPorts waits until each check port that a container publishes accepts a connection at the
// container's own address, from the target.
func (r *imageRun) waitContainerPorts(ctx context.Context, ctrs []compose.Container, timeout time.Duration) error {
	for _, p := range r.app.Check.Ports {
		for _, c := range ctrs {
			b, ok := c.Published(p)
			if !ok || len(c.IPs) == 0 {
				continue
			}
			addr := net.JoinHostPort(c.IPs[0], strconv.Itoa(b.ContainerPort))
			if err := r.c.WaitPort(ctx, "tcp", addr, checkInterval); err != nil {
				r.logContainers(context.WithoutCancel(ctx), []compose.Container{c})
				return fmt.Errorf("check: port %d is published by container %s (%s), but nothing listens on its port %d within %s: %w",
					p, c.Short(), c.Name, b.ContainerPort, timeout, err)
			}
		}
	}
	return nil
}

// confirmContainers inspects the containers again after the checks: the same ones must still run, not
// restarted in the meantime, and not have turned unhealthy. A container that crashes a moment after it
// started would otherwise pass a port check answered by docker's proxy.
func (r *imageRun) confirmContainers(ctx context.Context, before []compose.Container) ([]compose.Container, error) {
	now, err := r.serviceContainers(ctx)
	if err != nil {
		return nil, err
	}
	if err := sameContainers(before, now); err != nil {
		r.logContainers(ctx, now)
		return now, err
	}
	return now, nil
}

// sameContainers compares two inspections of a service taken before and after its checks.
func sameContainers(before, now []compose.Container) error {
	byID := map[string]compose.Container{}
	for _, c := range now {
		byID[c.ID] = c
	}
	for _, b := range before {
		c, ok := byID[b.ID]
		switch {
		case !ok:
			return fmt.Errorf("container %s (%s) disappeared during the checks", b.Short(), b.Name)
		case c.Status != "running":
			return fmt.Errorf("container %s (%s) stopped during the checks: %s, exit code %d%s", c.Short(), c.Name, c.Status, c.ExitCode, stateDetail(c))
		case !c.StartedAt.Equal(b.StartedAt) || c.RestartCount != b.RestartCount:
			return fmt.Errorf("container %s (%s) restarted during the checks (%d restarts)", c.Short(), c.Name, c.RestartCount)
		case c.Health == "unhealthy":
			return fmt.Errorf("container %s (%s) turned unhealthy: %s", c.Short(), c.Name, orNone(oneLineOf(c.HealthOutput)))
		}
	}
	return nil
}

// logContainers writes the state and last output lines of containers to the run's log, and the first
// failure's lines to the outcome's LogTail, so a failed deploy shows why the app did not come up.
func (r *imageRun) logContainers(ctx context.Context, ctrs []compose.Container) {
	for _, c := range ctrs {
		r.logf("container %s (%s): %s, exit code %d, restarts %d%s", c.Short(), c.Name, c.Status, c.ExitCode, c.RestartCount, healthNote(c))
		argv, err := compose.ContainerLogs(c.ID, containerLogLines)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := r.c.Run(ctx, remote.Command{Argv: argv, ReadOnly: true})
		cancel()
		if err != nil || res == nil {
			continue
		}
		// docker logs writes the container's stdout and stderr to its own; their order across the two is lost.
		lines := TailLines(string(res.Stdout)+string(res.Stderr), containerLogLines)
		for _, line := range lines {
			r.logf("  %s | %s", c.Name, line)
		}
		if len(r.out.LogTail) == 0 {
			r.out.LogTail = lines // the first failure's, not a rollback's
		}
	}
}

func healthNote(c compose.Container) string {
	if c.Health == "" {
		return ""
	}
	return ", health " + c.Health
}
