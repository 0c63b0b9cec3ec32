package main

import (
	"context"
	"os"
	"slices"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/notify"
)

// notifiedCommands are the commands whose results go to the inventory's [[notify]] entries.
var notifiedCommands = map[string]bool{"deploy": true, "rollback": true, "prune": true}

// notifyReport sends the report of a finished command to the inventory's notifiers; schedule names the
// [[schedules]] entry that ran it under `skiff cron`. Failures are warnings (warnf): they never change the
// exit code, and each notifier has notify.Timeout at most.
func notifyReport(ctx context.Context, inv *inventory.Inventory, r report, who fleet.Who, schedule string, started time.Time, warnf func(string, ...any)) {
	if len(inv.Notify) == 0 || !notifiedCommands[r.Command] {
		return
	}
	ev := &notify.Event{
		Event: r.Command, Command: r.Command, App: r.App, Schedule: schedule, OK: r.OK, DryRun: r.DryRun,
		Operator: who.Operator, Origin: who.Origin, Time: started.UTC(), DurationMS: time.Since(started).Milliseconds(),
	}
	for _, h := range r.Hosts {
		hr := notify.HostResult{Host: h.Host, OK: h.OK, Error: h.Error}
		if h.Outcome != nil {
			hr.ReleaseBefore, hr.ReleaseAfter, hr.RolledBack, hr.LogTail = h.Before, h.After, h.RolledBack, slices.Clone(h.LogTail)
		}
		ev.RolledBack = ev.RolledBack || hr.RolledBack
		ev.Hosts = append(ev.Hosts, hr)
	}
	ev.Scrub(notify.Secrets(inv, os.Getenv))
	sender := &notify.Sender{Notifiers: inv.Notify, Getenv: os.Getenv}
	for _, err := range sender.Send(ctx, ev) {
		warnf("skiff: warning: %v", err)
	}
}
