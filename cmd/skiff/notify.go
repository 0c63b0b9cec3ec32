package main

import (
	"context"
	"os"
	"slices"
	"time"

	"github.com/skiffdeploy/skiff/notify"
)

// notifiedCommands are the commands whose results go to the inventory's [[notify]] entries.
var notifiedCommands = map[string]bool{"deploy": true, "rollback": true, "prune": true}

// notifyReport sends the report of a finished command to the inventory's notifiers. Failures are warnings on
// stderr: they never change the exit code, and each notifier has notify.Timeout at most.
func (s *session) notifyReport(ctx context.Context, r report) {
	if len(s.inv.Notify) == 0 || !notifiedCommands[r.Command] {
		return
	}
	ev := &notify.Event{
		Event: r.Command, Command: r.Command, App: s.app, Schedule: s.schedule, OK: r.OK, DryRun: r.DryRun,
		Operator: s.operator, Origin: s.origin, Time: s.started.UTC(), DurationMS: time.Since(s.started).Milliseconds(),
	}
	for _, h := range r.Hosts {
		hr := notify.HostResult{Host: h.Host, OK: h.OK, Error: h.Error}
		if h.Outcome != nil {
			hr.ReleaseBefore, hr.ReleaseAfter, hr.RolledBack, hr.LogTail = h.Before, h.After, h.RolledBack, slices.Clone(h.LogTail)
		}
		ev.RolledBack = ev.RolledBack || hr.RolledBack
		ev.Hosts = append(ev.Hosts, hr)
	}
	ev.Scrub(notify.Secrets(s.inv, os.Getenv))
	sender := &notify.Sender{Notifiers: s.inv.Notify, Getenv: os.Getenv}
	for _, err := range sender.Send(ctx, ev) {
		s.out.logf("skiff: warning: %v", err)
	}
}
