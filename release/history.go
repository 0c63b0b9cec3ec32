package release

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
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

// AppendHistory adds one line to the app's history on the target. One printf of one line with O_APPEND is
// atomic enough for a file that only skiff writes, and only under the app's lock.
func AppendHistory(ctx context.Context, c runner, l Layout, e HistoryEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := c.Run(ctx, remote.Script(`mkdir -p "$1" && printf '%s\n' "$3" >> "$2"`, l.SkiffDir(), l.History(), string(data))); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	return nil
}

// ReadHistory returns the app's history on the target, oldest first; a missing file is an empty history.
func ReadHistory(ctx context.Context, c runner, l Layout) ([]HistoryEntry, error) {
	res, err := c.Run(ctx, remote.Script(`[ -f "$1" ] && cat "$1" || true`, l.History()))
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return ParseHistory(res.Stdout)
}

// ParseHistory decodes and validates history lines; a bad line is an error naming its number.
func ParseHistory(data []byte) ([]HistoryEntry, error) {
	var out []HistoryEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e HistoryEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("history line %d: %w", n, err)
		}
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("history line %d: %w", n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
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
