package deploy

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/supervisor"
)

// Bounds of the log lines attached to a failed host's outcome: what a target's logs hold is hostile input.
const (
	logTailLines   = 20
	logTailLineMax = 512
	diagnoseWithin = 10 * time.Second
)

// TailLines turns raw log text into at most n clean lines: the last ones, each cut to logTailLineMax bytes,
// control characters (escape sequences, carriage returns) replaced, so that they can be printed to a
// terminal and put into JSON as they are.
func TailLines(text string, n int) []string {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return nil
	}
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if len(l) > logTailLineMax {
			l = l[:logTailLineMax] + "…"
		}
		out = append(out, cleanLine(l))
	}
	return out
}

// diagnose attaches the app's last log lines to a host whose restart or check failed, once: from a
// supervisord start error when it has them, else from each of the app's programs' stderr log (stdout when stderr is empty or redirected).
// It is best effort: a log that cannot be read adds nothing.
func (r *hostRun) diagnose(ctx context.Context, cause error) {
	if len(r.out.LogTail) > 0 {
		return
	}
	var se *supervisor.StartError
	if errors.As(cause, &se) && se.LogTail != "" {
		r.out.LogTail = TailLines(se.LogTail, logTailLines)
		return
	}
	sup := r.app.Supervisor
	if sup.URL == "" || len(sup.Programs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), diagnoseWithin)
	defer cancel()
	client, err := r.supervisor()
	if err != nil {
		return
	}
	defer client.Close()
	names, err := client.Resolve(ctx, sup.Programs)
	if err != nil {
		return
	}
	for _, name := range names {
		text, err := client.TailStderr(ctx, name, logTailLines)
		if err == nil && strings.TrimSpace(text) == "" {
			text, err = client.TailStdout(ctx, name, logTailLines)
		}
		if err != nil {
			continue
		}
		for _, l := range TailLines(text, logTailLines) {
			if len(names) > 1 {
				l = name + ": " + l
			}
			r.out.LogTail = append(r.out.LogTail, l)
		}
	}
	if len(r.out.LogTail) > logTailLines {
		r.out.LogTail = r.out.LogTail[len(r.out.LogTail)-logTailLines:]
	}
}
