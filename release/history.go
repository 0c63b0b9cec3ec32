package release

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/skiffdeploy/skiff/remote"
)

// Results recorded in history.
const (
	ResultOK         = "ok"          // the release went live and passed its checks
	ResultFailed     = "failed"      // the release failed; current was not switched, or was switched back
	ResultRolledBack = "rolled_back" // an automatic rollback to Previous after ID failed
)

// Actions recorded in history (HistoryEntry.Op).
const (
	ActionDeploy   = "deploy"
	ActionRollback = "rollback"
)

// HistoryEntry is one line of <path>/.skiff/history.jsonl: one deploy or rollback of one app on one host.
type HistoryEntry struct {
	Time     time.Time `json:"time"`
	Op       string    `json:"op"` // ActionDeploy or ActionRollback
	App      string    `json:"app"`
	ID       string    `json:"id,omitempty"`       // the release that is (or was to be) live
	Previous string    `json:"previous,omitempty"` // what was live before
	Result   string    `json:"result"`
	Operator string    `json:"operator,omitempty"`
	Origin   string    `json:"origin,omitempty"`
	Run      string    `json:"run,omitempty"` // one id per skiff invocation, shared by all its hosts
	Revision string    `json:"revision,omitempty"`
	Tag      string    `json:"tag,omitempty"`
	Image    string    `json:"image,omitempty"`
	Digest   string    `json:"digest,omitempty"`
	Error    string    `json:"error,omitempty"`
}

var (
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	knownOps      = map[string]bool{ActionDeploy: true, ActionRollback: true}
	knownResults  = map[string]bool{ResultOK: true, ResultFailed: true, ResultRolledBack: true}
)

// validate checks an entry read back from a target before any of it reaches a path or a command.
func (e HistoryEntry) validate() error {
	switch {
	case !knownOps[e.Op]:
		return fmt.Errorf("unknown op %q", e.Op)
	case !knownResults[e.Result]:
		return fmt.Errorf("unknown result %q", e.Result)
	case e.ID != "" && !ValidReleaseID(e.ID):
		return fmt.Errorf("invalid release id %q", e.ID)
	case e.Previous != "" && !ValidReleaseID(e.Previous):
		return fmt.Errorf("invalid previous release id %q", e.Previous)
	case e.Digest != "" && !digestPattern.MatchString(e.Digest):
		return fmt.Errorf("invalid digest %q", e.Digest)
	}
	return nil
}

// MaxHistoryBytes bounds the history skiff reads from a target: years of deploys fit in it, and a target
// cannot make skiff allocate more.
const MaxHistoryBytes = 8 << 20

// appendHistoryScript appends $3 as one line to $2 with one write. When the file does not end in a newline (a
// disk that filled during an earlier append), the line starts with one, so the half line stays a line of its
// own, which ParseHistory skips, and never hides this one.
const appendHistoryScript = `[ -d "$1" ] || mkdir -p "$1" || exit 1
if [ -s "$2" ] && [ -n "$(tail -c 1 "$2")" ]; then printf '\n%s\n' "$3" >> "$2"; else printf '%s\n' "$3" >> "$2"; fi`

// AppendHistory adds one line to the app's history on the target. One printf of one line with O_APPEND is
// atomic enough for a file that only skiff writes, and only under the app's lock.
func AppendHistory(ctx context.Context, c runner, l Layout, e HistoryEntry) error {
	cmd, err := AppendHistoryCommand(l, e)
	if err != nil {
		return err
	}
	if _, err := c.Run(ctx, cmd); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	return nil
}

// AppendHistoryCommand is the command AppendHistory runs, for a caller that runs it in a remote.Sequence.
func AppendHistoryCommand(l Layout, e HistoryEntry) (remote.Command, error) {
	line, err := historyLine(e)
	if err != nil {
		return remote.Command{}, err
	}
	return remote.Script(appendHistoryScript, l.SkiffDir(), l.History(), string(line[:len(line)-1])), nil
}

// ReadHistory returns the app's history on the target, oldest first; a missing file is an empty history.
// Lines it cannot use are skipped with a warning (see Warn); a history larger than MaxHistoryBytes is an error.
func ReadHistory(ctx context.Context, c runner, l Layout) ([]HistoryEntry, error) {
	cmd := remote.Script(`[ -f "$1" ] || exit 0; head -c "$2" "$1"`, l.History(), strconv.Itoa(MaxHistoryBytes+1))
	cmd.MaxOutput, cmd.ReadOnly = MaxHistoryBytes+1, true
	res, err := c.Run(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	if len(res.Stdout) > MaxHistoryBytes {
		return nil, HistoryTooLarge(l, -1)
	}
	return parseHistoryOf(ctx, l, res.Stdout), nil
}

// HistoryTooLarge is the error of a history beyond MaxHistoryBytes; size is -1 when not known.
func HistoryTooLarge(l Layout, size int64) error {
	if size < 0 {
		return fmt.Errorf("read history: %s is larger than %d bytes, the most skiff reads; move it aside", l.History(), MaxHistoryBytes)
	}
	return fmt.Errorf("read history: %s is %d bytes, more than the %d skiff reads; move it aside", l.History(), size, MaxHistoryBytes)
}

// parseHistoryOf parses the history of l, warning about each line it skips.
func parseHistoryOf(ctx context.Context, l Layout, data []byte) []HistoryEntry {
	h, skipped := ParseHistory(data)
	for _, s := range skipped {
		Warn(ctx, "%s line %d skipped: %v", l.History(), s.Line, s.Err)
	}
	return h
}

// SkippedLine is a history line that ParseHistory could not use.
type SkippedLine struct {
	Line int
	Err  error
}

// maxHistoryLine bounds one history line; an entry is a few hundred bytes.
const maxHistoryLine = 64 << 10

// ParseHistory decodes and validates history lines. A line that is not a valid entry (a half line left by a
// full disk, say) is skipped and returned with its number, so that one bad line never blocks rollbacks.
func ParseHistory(data []byte) ([]HistoryEntry, []SkippedLine) {
	var out []HistoryEntry
	var skipped []SkippedLine
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(line) > maxHistoryLine {
			skipped = append(skipped, SkippedLine{n, fmt.Errorf("line of %d bytes is longer than %d", len(line), maxHistoryLine)})
			continue
		}
		var e HistoryEntry
		err := json.Unmarshal(line, &e)
		if err == nil {
			err = e.validate()
		}
		if err != nil {
			skipped = append(skipped, SkippedLine{n, err})
			continue
		}
		out = append(out, e)
	}
	return out, skipped
}

// FailedIDs returns the releases that history marks as failed, which rollbacks refuse and retention does
// not count.
func FailedIDs(h []HistoryEntry) map[string]bool {
	failed := map[string]bool{}
	for _, e := range h {
		if e.Op == ActionDeploy && e.ID != "" {
			failed[e.ID] = e.Result != ResultOK
		}
	}
	return failed
}
