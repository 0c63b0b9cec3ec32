package remote

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRun_OutputBounded runs a command that writes without end on a real host: Run stops it once it has
// written more than the bound to a collected stream, and says which command and stream, instead of
// collecting until skiff runs out of memory.
func TestRun_OutputBounded(t *testing.T) {
	_, _, c := connect(t)
	for _, tc := range []struct {
		name, stream string
		argv         []string
	}{
		{name: "stdout", stream: "standard output", argv: []string{"cat", "/dev/zero"}},
		{name: "stderr", stream: "standard error", argv: []string{"sh", "-c", "cat /dev/zero >&2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := c.Run(testCtx(t), Command{Argv: tc.argv, MaxOutput: 1 << 20})
			var big *OutputTooLargeError
			if !errors.As(err, &big) || big.Stream != tc.stream || big.Limit != 1<<20 || !strings.Contains(err.Error(), tc.argv[0]) {
				t.Fatalf("err = %v after %s, want an *OutputTooLargeError for %s naming the command", err, time.Since(start), tc.stream)
			}
		})
	}
	// The default bound applies when a command sets none.
	_, err := c.Run(testCtx(t), Command{Argv: []string{"cat", "/dev/zero"}})
	var big *OutputTooLargeError
	if !errors.As(err, &big) || big.Limit != DefaultMaxOutput {
		t.Fatalf("err = %v, want an *OutputTooLargeError at DefaultMaxOutput", err)
	}
	// The connection is still good for the next command.
	if res, err := c.Run(testCtx(t), Command{Argv: []string{"echo", "ok"}}); err != nil || strings.TrimSpace(string(res.Stdout)) != "ok" {
		t.Fatalf("next command: %v", err)
	}
}
