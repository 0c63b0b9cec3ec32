package remote

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Command is one command to run on a target, described as data so that the
// same value can be sent over SSH or printed by a dry run.
//
// Env values are rendered inline on the command line (sshd refuses most
// environment requests), so they are visible in the target's process list and
// in String: never put secrets in Env or Argv, pass them on Stdin instead.
type Command struct {
	// Argv is the program and its arguments; each word is quoted with Quote.
	Argv []string
	// Script is raw shell text (a user's hook, for example), run as sh -c '<script>'.
	// Exactly one of Argv and Script must be set.
	Script string
	// Dir is the directory to cd into first; the command fails if it does not exist.
	Dir string
	// Env holds "K=V" pairs set for the command only. K must match [A-Za-z_][A-Za-z0-9_]*.
	Env []string
	// Stdin, when set, is copied to the command's standard input.
	Stdin io.Reader
	// Stdout and Stderr, when set, are called once per line (without the newline)
	// as output arrives; when nil the stream is collected in Result.
	Stdout, Stderr func(line string)
	// MaxOutput bounds the bytes collected of each stream without a callback
	// (DefaultMaxOutput when zero); a command that writes more is stopped and
	// Run returns an *OutputTooLargeError.
	MaxOutput int64
	// ReadOnly says the command changes nothing on the target, not even a
	// temporary file: a dry run still runs it, and renders every other command
	// instead of running it.
	ReadOnly bool
}

// Script builds a command that runs a fixed shell script with its inputs as positional parameters ($1, $2,
// …), so no value from the inventory, a tree or a target is ever spliced into shell text.
func Script(text string, args ...string) Command {
	return Command{Argv: append([]string{"sh", "-c", text, "skiff"}, args...)}
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// String returns the exact command line sent to the target; dry runs print it.
// It does not validate the command: Run does, and refuses what String would
// render wrongly.
func (c Command) String() string {
	var b strings.Builder
	if c.Dir != "" {
		b.WriteString("cd ")
		b.WriteString(Quote(c.Dir))
		b.WriteString(" && ")
	}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(Quote(v))
		b.WriteByte(' ')
	}
	if c.Script != "" {
		b.WriteString("sh -c ")
		b.WriteString(Quote(c.Script))
	} else {
		b.WriteString(Join(c.Argv))
	}
	return b.String()
}

// Validate reports why the command cannot be rendered safely, or nil.
func (c Command) Validate() error {
	switch {
	case len(c.Argv) == 0 && c.Script == "":
		return errors.New("command: neither Argv nor Script is set")
	case len(c.Argv) > 0 && c.Script != "":
		return errors.New("command: Argv and Script are exclusive")
	case len(c.Argv) > 0 && c.Argv[0] == "":
		return errors.New("command: empty program name")
	case strings.HasPrefix(c.Dir, "-"):
		return fmt.Errorf("command: directory %s starts with '-'", Quote(c.Dir))
	}
	for _, kv := range c.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !envName.MatchString(k) {
			// Only the name is shown: the value may be sensitive.
			return fmt.Errorf("command: invalid environment entry %s (want NAME=value with NAME matching [A-Za-z_][A-Za-z0-9_]*)", Quote(k))
		}
		if strings.ContainsRune(kv, 0) {
			return fmt.Errorf("command: environment variable %s contains a NUL byte", k)
		}
	}
	for _, s := range append([]string{c.Dir, c.Script}, c.Argv...) {
		if strings.ContainsRune(s, 0) {
			return errors.New("command: contains a NUL byte, which a shell cannot pass")
		}
	}
	return nil
}

// Result is what a finished command produced. Stdout and Stderr hold the
// output only for streams that had no line callback.
type Result struct {
	Stdout, Stderr []byte
	Status         int
	Duration       time.Duration
}

// ExitError is returned by Run when the remote command exited with a non-zero
// status or was killed by a signal; Run returns the Result alongside it.
type ExitError struct {
	// Status is the exit status (128+n when killed by signal n, as a shell reports it).
	Status int
	// Signal is the signal name without "SIG" ("TERM") when the command was killed.
	Signal string
	// Stderr holds the last lines the command wrote to standard error.
	Stderr string
}

// Error returns "exit status N: <stderr tail>" or "killed by signal NAME".
func (e *ExitError) Error() string {
	var msg string
	if e.Signal != "" {
		msg = "killed by signal " + e.Signal
	} else {
		msg = fmt.Sprintf("exit status %d", e.Status)
	}
	if tail := strings.TrimSpace(e.Stderr); tail != "" {
		msg += ": " + strings.ReplaceAll(tail, "\n", "; ")
	}
	return msg
}

// tailLines keeps the last max lines written to it, for ExitError.Stderr.
type tailLines struct {
	max   int
	lines []string
}

func (t *tailLines) add(line string) {
	const maxLineLen = 512
	if len(line) > maxLineLen {
		line = line[:maxLineLen] + "…"
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tailLines) String() string { return strings.Join(t.lines, "\n") }
