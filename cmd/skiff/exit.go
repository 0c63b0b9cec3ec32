package main

import (
	"errors"
	"fmt"

	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/inventory"
)

// Exit codes, as DESIGN.md defines them.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitLocked      = 3
	exitUnreachable = 4
)

// usageError is a mistake in how skiff was called; it exits with code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// lockedError marks a failure caused by a lock that another run holds; it exits with code 3.
// Packages that detect a held lock wrap their error in a type implementing LockHeld() bool.
type lockHeld interface{ LockHeld() bool }

// exitCode maps an error to the process exit code. Classification uses errors.As on the whole chain, so
// wrapping with host and step context never loses it (unlike cli.Exit codes).
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	var ie *inventory.Error
	var re *reportedError
	switch {
	case errors.As(err, &re):
		return re.code
	case errors.As(err, &ue), errors.As(err, &ie), fleet.IsRequestError(err):
		return exitUsage
	case fleet.IsUnreachable(err):
		return exitUnreachable
	case isLockHeld(err):
		return exitLocked
	}
	return exitFailed
}

func isLockHeld(err error) bool {
	var lh lockHeld
	return errors.As(err, &lh) && lh.LockHeld()
}

// hostsExitCode folds the errors of several hosts into one exit code: an unreachable host wins over a held
// lock, which wins over any other failure, so a CI job can tell "fix the network" from "fix the app".
func hostsExitCode(errs []error) int {
	code := exitOK
	rank := map[int]int{exitOK: 0, exitFailed: 1, exitLocked: 2, exitUnreachable: 3, exitUsage: 4}
	for _, err := range errs {
		if c := exitCode(err); rank[c] > rank[code] {
			code = c
		}
	}
	return code
}
