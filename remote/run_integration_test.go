package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRun_CollectsOutput(t *testing.T) {
	_, _, c := connect(t)
	res, err := c.Run(testCtx(t), Command{Script: "echo out; echo err >&2"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.Status != 0 {
		t.Errorf("got stdout %q stderr %q status %d", res.Stdout, res.Stderr, res.Status)
	}
}

func TestRun_StreamsLines(t *testing.T) {
	_, _, c := connect(t)
	// The command prints its second line only after reading stdin, which the
	// test writes only once the first line has arrived: proof of streaming.
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	var mu sync.Mutex
	var lines []string
	first := make(chan struct{})
	cmd := Command{
		Script: "echo first; read x; echo \"got $x\"; printf 'no newline'",
		Stdin:  stdinR,
		Stdout: func(l string) {
			mu.Lock()
			lines = append(lines, l)
			mu.Unlock()
			if l == "first" {
				close(first)
			}
		},
	}
	go func() {
		select {
		case <-first:
			io.WriteString(stdinW, "hello\n")
		case <-time.After(20 * time.Second):
		}
		stdinW.Close()
	}()
	res, err := c.Run(testCtx(t), cmd)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{"first", "got hello", "no newline"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", lines, want)
	}
	if len(res.Stdout) != 0 {
		t.Errorf("streamed output was also collected: %q", res.Stdout)
	}
}

func TestRun_NonZeroExit(t *testing.T) {
	_, _, c := connect(t)
	script := "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i >&2; done; exit 3"
	for _, tc := range []struct {
		name   string
		stderr func(string)
	}{
		{name: "collected"},
		{name: "streamed", stderr: func(string) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Run(testCtx(t), Command{Script: script, Stderr: tc.stderr})
			var ee *ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v, want *ExitError", err)
			}
			if res == nil || res.Status != 3 || ee.Status != 3 {
				t.Fatalf("res = %+v, exit error status %d; want 3", res, ee.Status)
			}
			if !strings.HasPrefix(err.Error(), "exit status 3: ") || !strings.Contains(ee.Stderr, "line12") || strings.Contains(ee.Stderr, "line2\n") {
				t.Errorf("error %q, stderr tail %q", err, ee.Stderr)
			}
		})
	}
}

func TestRun_Stdin(t *testing.T) {
	_, _, c := connect(t)
	data := bytes.Repeat([]byte("payload \x00\xff 'quoted'\n"), 20000)
	res, err := c.Run(testCtx(t), Command{Argv: []string{"cat"}, Stdin: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !bytes.Equal(res.Stdout, data) {
		t.Errorf("cat returned %d bytes, want the %d sent", len(res.Stdout), len(data))
	}
}

func TestRun_DirAndEnv(t *testing.T) {
	_, h, c := connect(t)
	hostile := `it's "$HOME" $(id) ` + "`x`\n*"
	for _, tc := range []struct {
		name    string
		cmd     Command
		want    string
		wantErr bool
	}{
		{name: "dir", cmd: Command{Dir: h.Root, Argv: []string{"pwd"}}, want: h.Root + "\n"},
		{name: "env", cmd: Command{Env: []string{"V=" + hostile}, Script: `printf %s "$V"`}, want: hostile},
		{name: "env with argv", cmd: Command{Env: []string{"A=1", "B="}, Argv: []string{"sh", "-c", `echo "$A/$B"`}}, want: "1/\n"},
		{name: "missing dir", cmd: Command{Dir: filepath.Join(h.Root, "nope"), Argv: []string{"true"}}, wantErr: true},
		{name: "invalid env", cmd: Command{Env: []string{"A-B=1"}, Argv: []string{"true"}}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Run(testCtx(t), tc.cmd)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Run succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if string(res.Stdout) != tc.want {
				t.Errorf("stdout = %q, want %q", res.Stdout, tc.want)
			}
		})
	}
}

func TestRun_CancelKillsRemoteCommand(t *testing.T) {
	_, h, c := connect(t)
	pidFile := filepath.Join(h.Root, fmt.Sprintf("cancel-%d.pid", time.Now().UnixNano()))
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, Command{Script: "echo $$ > " + Quote(pidFile) + "; exec sleep 1000"})
		done <- err
	}()

	pid := waitForPID(t, c, pidFile)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	// Alive means present and not a zombie: the killed shell may wait a while
	// for init to reap it, which does not matter.
	alive := fmt.Sprintf(`st=$(cut -d')' -f2 /proc/%d/stat 2>/dev/null) || exit 1; set -- $st; [ "$1" != Z ]`, pid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Run(testCtx(t), Command{Script: alive})
		var ee *ExitError
		if errors.As(err, &ee) {
			return // gone
		} else if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote process %d still running after cancel", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForPID polls the target until the file holds a PID.
func waitForPID(t *testing.T, c *Conn, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := c.Run(testCtx(t), Command{Script: "cat " + Quote(path) + " 2>/dev/null || true"})
		if err != nil {
			t.Fatal(err)
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(res.Stdout))); err == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no PID in %s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConn_ManyConcurrentRuns(t *testing.T) {
	_, h, c := connect(t)
	if _, err := c.SFTP(testCtx(t)); err != nil { // holds one session slot throughout
		t.Fatalf("SFTP: %v", err)
	}
	const n = 50
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Run(testCtx(t), Command{Script: "sleep 0.1; echo " + strconv.Itoa(i)})
			if err == nil && strings.TrimSpace(string(res.Stdout)) != strconv.Itoa(i) {
				err = fmt.Errorf("run %d: stdout %q", i, res.Stdout)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.Log(h.Log())
	}
}

func TestPool_ConcurrentGetsShareOneConnection(t *testing.T) {
	env, _, _ := connect(t)
	p := newTestPool(t, Options{})
	target := targetFor(env, env.Hosts[1])
	const n = 20
	conns := make(chan *Conn, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.Get(testCtx(t), target)
			if err != nil {
				t.Error(err)
			}
			conns <- c
		}()
	}
	wg.Wait()
	close(conns)
	first := <-conns
	for c := range conns {
		if c != first {
			t.Fatal("concurrent Gets returned different connections")
		}
	}
	if got, want := first.HostKeyFingerprint(), env.Hosts[1].HostKeyFingerprint; got != want {
		t.Errorf("fingerprint %s, want %s", got, want)
	}
}

func TestSFTP_SharedClient(t *testing.T) {
	_, h, c := connect(t)
	a, err := c.SFTP(testCtx(t))
	if err != nil {
		t.Fatalf("SFTP: %v", err)
	}
	b, err := c.SFTP(testCtx(t))
	if err != nil || a != b {
		t.Fatalf("second SFTP call: %v, same client %v", err, a == b)
	}
	path := filepath.Join(h.Root, fmt.Sprintf("sftp-%d.txt", time.Now().UnixNano()))
	f, err := a.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("via sftp")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(testCtx(t), Command{Argv: []string{"cat", path}})
	if err != nil || string(res.Stdout) != "via sftp" {
		t.Fatalf("cat: %v %q", err, res.Stdout)
	}
}
