package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/remote"
	"github.com/skiffdeploy/skiff/supervisor"
)

// LogOptions say which of an app's log lines `skiff logs` shows.
type LogOptions struct {
	// Lines is how many of the last lines to show first (per program and stream, or per container).
	Lines int
	// Follow keeps showing new lines until ctx ends.
	Follow bool
	// Since shows only lines of the last Since (image apps: docker logs --since). supervisord's logs carry
	// no time, so source apps refuse it (ErrSinceUnsupported).
	Since time.Duration
	// Poll is how often supervisord logs are looked at when following; 0 means 250ms.
	Poll time.Duration
	// Secret looks up supervisor.password_env.
	Secret func(string) string
}

// ErrSinceUnsupported is returned for --since on an app run by supervisord, whose logs have no timestamps.
var ErrSinceUnsupported = errors.New("--since needs timestamped logs: supervisord's have none (use -n)")

// Bounds of what `skiff logs` reads from a target.
const (
	logReadChunk   = 64 << 10 // bytes read at once from a supervisord log
	logSkipAfter   = 1 << 20  // a log that grew more than this between two looks is skipped ahead
	maxLogLineSize = 16 << 10 // a longer line is cut
)

// AppLogs shows an app's log lines on one host through emit, one call per line (cleaned, bounded): the
// programs' stdout and stderr logs through supervisord's XML-RPC API, or the output of the service's
// containers through `docker logs`. With opts.Follow it returns when ctx ends (nil) or the host fails.
func AppLogs(ctx context.Context, c HostConn, app *inventory.App, opts LogOptions, emit func(line string)) error {
	if opts.Lines < 0 {
		opts.Lines = 0
	}
	var err error
	if app.Kind == inventory.KindImage {
		err = containerLogs(ctx, c, app, opts, emit)
	} else {
		err = programLogs(ctx, c, app, opts, emit)
	}
	if opts.Follow && ctx.Err() != nil {
		return nil
	}
	return err
}

func containerLogs(ctx context.Context, c HostConn, app *inventory.App, opts LogOptions, emit func(string)) error {
	ctrs, err := ServiceContainers(ctx, c, compose.ProjectName(app.Path), app.Service)
	if err != nil {
		return err
	}
	if len(ctrs) == 0 {
		return fmt.Errorf("service %s has no container", app.Service)
	}
	errs := make(chan error, len(ctrs))
	for _, ctr := range ctrs {
		go func() {
			argv, err := compose.FollowLogs(ctr.ID, opts.Lines, opts.Since, opts.Follow)
			if err == nil {
				prefix := ""
				if len(ctrs) > 1 {
					prefix = ctr.Name + ": "
				}
				line := func(l string) { emit(prefix + cleanLine(l)) }
				_, err = c.Run(ctx, remote.Command{Argv: argv, Stdout: line, Stderr: line, ReadOnly: true})
			}
			errs <- err
		}()
	}
	var all []error
	for range ctrs {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// programLogs shows the last lines of every program's logs, then with Follow polls their sizes and reads
// what was added.
func programLogs(ctx context.Context, c HostConn, app *inventory.App, opts LogOptions, emit func(string)) error {
	if opts.Since > 0 {
		return ErrSinceUnsupported
	}
	sup := app.Supervisor
	if sup.URL == "" || len(sup.Programs) == 0 {
		return fmt.Errorf("app %s has no supervisor programs to show the logs of", app.Name)
	}
	r := newHostRun(c, app, "", &Options{Secret: opts.Secret})
	client, err := r.supervisor()
	if err != nil {
		return err
	}
	defer client.Close()
	names, err := client.Resolve(ctx, sup.Programs)
	if err != nil {
		return err
	}
	var logs []*programLog
	for _, name := range names {
		for _, s := range []supervisor.Stream{supervisor.Stdout, supervisor.Stderr} {
			l := &programLog{client: client, name: name, stream: s}
			if len(names) > 1 {
				l.prefix = name + ": "
			}
			ok, err := l.start(ctx, opts.Lines, emit)
			if err != nil {
				return err
			}
			if ok {
				logs = append(logs, l)
			}
		}
	}
	if !opts.Follow {
		return nil
	}
	poll := opts.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, l := range logs {
			if err := l.more(ctx, emit); err != nil {
				return err
			}
		}
	}
}

// programLog follows one log of one program by its size.
type programLog struct {
	client  *supervisor.Client
	name    string
	stream  supervisor.Stream
	prefix  string
	pos     int64  // bytes of the log already shown
	partial string // the start of a line whose end has not been written yet
}

// start shows the last n lines and remembers where the log ends. A log supervisord does not keep (stderr
// redirected to stdout, or set to none) is reported as not ok.
func (l *programLog) start(ctx context.Context, n int, emit func(string)) (ok bool, err error) {
	size, err := l.client.LogSize(ctx, l.name, l.stream)
	if supervisor.IsFault(err, supervisor.FaultNoFile) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	from := max(0, size-logReadChunk)
	l.pos = size
	if n == 0 || size == 0 {
		return true, nil
	}
	text, err := l.client.ReadLog(ctx, l.name, l.stream, from, size-from)
	if err != nil {
		return false, err
	}
	if from > 0 {
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[i+1:]
		}
	}
	lines, partial := splitLines(text)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for _, line := range lines {
		emit(l.prefix + cleanLine(line))
	}
	l.partial = partial
	return true, nil
}

// more shows the lines added since the last look. A log that shrank was rotated: it is read from its start.
func (l *programLog) more(ctx context.Context, emit func(string)) error {
	size, err := l.client.LogSize(ctx, l.name, l.stream)
	if err != nil {
		return err
	}
	if size < l.pos {
		l.pos, l.partial = 0, ""
	}
	if size-l.pos > logSkipAfter {
		emit(fmt.Sprintf("%s[skiff: %d bytes of %s skipped]", l.prefix, size-logReadChunk-l.pos, l.stream))
		l.pos, l.partial = size-logReadChunk, ""
	}
	for l.pos < size {
		n := min(size-l.pos, logReadChunk)
		text, err := l.client.ReadLog(ctx, l.name, l.stream, l.pos, n)
		if err != nil {
			return err
		}
		l.pos += n
		lines, partial := splitLines(l.partial + text)
		for _, line := range lines {
			emit(l.prefix + cleanLine(line))
		}
		l.partial = partial
		if len(l.partial) > maxLogLineSize {
			emit(l.prefix + cleanLine(l.partial))
			l.partial = ""
		}
	}
	return nil
}

// splitLines returns the complete lines of text and what follows the last newline.
func splitLines(text string) ([]string, string) {
	i := strings.LastIndexByte(text, '\n')
	if i < 0 {
		return nil, text
	}
	return strings.Split(text[:i], "\n"), text[i+1:]
}

// cleanLine bounds a line read from a target and replaces its control characters, so that printing it
// cannot move a terminal's cursor or forge another host's line.
func cleanLine(s string) string {
	if len(s) > maxLogLineSize {
		s = s[:maxLogLineSize] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' || r == 0x7f {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}
