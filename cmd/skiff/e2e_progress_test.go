package main

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// bigTree is a source tree with one file of size random bytes (seeded, so every tree differs).
func bigTree(t *testing.T, seed uint64, size int) string {
	t.Helper()
	return e2eAppTree(t, "big", func(dir string) {
		f, err := os.Create(filepath.Join(dir, "blob.bin"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
		if _, err := io.CopyN(f, r, int64(size)); err != nil {
			t.Fatal(err)
		}
	})
}

var (
	progressLine = regexp.MustCompile(`(?m)^h1 > upload +\d+%  [0-9.]+ [KMG]?i?B of 200\.0 MiB, \d+ of \d+ file\(s\)(, [0-9.]+ [KMG]?i?B/s)?`)
	cursorUp     = regexp.MustCompile(`\x1b\[\d*A`)
	digits       = regexp.MustCompile(`[0-9]+`)
)

// TestProgress_PipeTerminalAndJSON uploads 200 MiB to one host three times: with stdout a pipe, progress is
// plain lines with bytes and rate and no control characters; on a pseudo-terminal it is redrawn in place;
// with --json, stdout is the report alone, the same whether progress is shown (on stderr) or not.
func TestProgress_PipeTerminalAndJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 200 MiB several times")
	}
	const size = 200 << 20
	a := newE2EApp(t, "bigprogress", appOptions{supervisor: supervisorNone})
	deploy := func(seed uint64, args ...string) []string {
		time.Sleep(time.Second) // release ids have a resolution of one second
		return append(append([]string{"-i", a.inv}, args...), "deploy", a.name, "--source", bigTree(t, seed, size))
	}

	// A pipe.
	cmd := skiffCommand(t, deploy(1)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("deploy through a pipe: %v\n%s\n%s", err, out, stderr.String())
	}
	lines := progressLine.FindAllString(string(out), -1)
	withRate := 0
	for _, l := range lines {
		if strings.Contains(l, "/s") {
			withRate++
		}
	}
	if len(lines) < 5 || withRate < 5 {
		t.Errorf("pipe: %d progress lines (%d with a rate), want at least 5 with bytes and rate:\n%s", len(lines), withRate, out)
	}
	if bytes.ContainsAny(out, "\x1b\r") || bytes.ContainsAny(stderr.Bytes(), "\x1b\r") {
		t.Errorf("pipe output holds control characters:\n%q", out)
	}
	if !strings.Contains(string(out), "deploy: 1 host(s), 1 ok, 0 failed") {
		t.Errorf("pipe: no result line:\n%s", out)
	}

	// A pseudo-terminal.
	cmd = skiffCommand(t, deploy(2)...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 140})
	if err != nil {
		t.Fatal(err)
	}
	var screen bytes.Buffer
	_, err = io.Copy(&screen, tty)
	if err != nil && !errors.Is(err, syscall.EIO) { // the child's end closed
		t.Fatal(err)
	}
	tty.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("deploy on a terminal: %v\n%q", err, screen.String())
	}
	if redraws := len(cursorUp.FindAllIndex(screen.Bytes(), -1)); redraws < 2 || !strings.Contains(screen.String(), "upload ") {
		t.Errorf("terminal: %d in-place redraws of the upload line, want several:\n%q", redraws, screen.String())
	}
	if !strings.Contains(screen.String(), "deploy: 1 host(s), 1 ok, 0 failed") {
		t.Errorf("terminal: no result line:\n%q", screen.String())
	}

	// --json, with progress (plain, on stderr) and without.
	var reports [2]string
	for i, mode := range []string{"plain", "none"} {
		cmd = skiffCommand(t, deploy(uint64(3+i), "--json", "--progress", mode)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("--json --progress %s: %v\n%s\n%s", mode, err, out, stderr.String())
		}
		if got := len(regexp.MustCompile(`h1 > upload`).FindAll(stderr.Bytes(), -1)); (mode == "plain") != (got >= 5) {
			t.Errorf("--json --progress %s: %d progress lines on stderr", mode, got)
		}
		reports[i] = digits.ReplaceAllString(string(out), "0")
	}
	if reports[0] != reports[1] {
		t.Errorf("--json output differs with progress (digits masked):\n%s\nwithout:\n%s", reports[0], reports[1])
	}
}
