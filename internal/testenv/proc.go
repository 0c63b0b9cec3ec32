package testenv

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// errSpawnerClosed reports a start after the environment was closed.
var errSpawnerClosed = errors.New("testenv: environment closed")

// spawner starts the environment's daemons from one OS thread that lives as
// long as the environment. Daemons ask the kernel to kill them when the
// thread that started them dies (Pdeathsig), so if the test binary crashes
// or times out, no sshd is left holding its port; a dedicated locked thread
// makes that signal mean "the test process died" and nothing else.
type spawner struct {
	reqs chan func()
	quit chan struct{}
	once sync.Once
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan func()), quit: make(chan struct{})}
	go func() {
		// Never unlocked: when this goroutine returns its thread exits.
		runtime.LockOSThread()
		for {
			select {
			case f := <-s.reqs:
				f()
			case <-s.quit:
				return
			}
		}
	}()
	return s
}

// start starts cmd in its own process group from the spawner's thread and
// returns the running process.
func (s *spawner) start(cmd *exec.Cmd) (*process, error) {
	cmd.SysProcAttr = sysProcAttr()
	errc := make(chan error, 1)
	select {
	case s.reqs <- func() { errc <- cmd.Start() }:
	case <-s.quit:
		return nil, errSpawnerClosed
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (s *spawner) close() {
	s.once.Do(func() { close(s.quit) })
}

// process is a daemon started by the spawner.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process was reaped; err is then set
	err  error
}

// kill kills the daemon, every process descending from it, and every
// process whose environment carries token (those that daemonized away from
// the tree), then waits for the daemon to be reaped.
func (p *process) kill(token string) error {
	pid := p.cmd.Process.Pid
	select {
	case <-p.done:
		// Already reaped: the pid may belong to another process by now.
	default:
		killTree(pid)
	}
	killMarked(token)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("process %d did not exit after SIGKILL", pid)
	}
}

// killMarked SIGKILLs every process whose environment contains
// SKIFF_TESTENV_TOKEN=token, until none is left.
func killMarked(token string) {
	if token == "" {
		return
	}
	marker := []byte("SKIFF_TESTENV_TOKEN=" + token + "\x00")
	for round := 0; round < 20; round++ {
		marked := markedProcs(marker)
		if len(marked) == 0 {
			return
		}
		for _, p := range marked {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
