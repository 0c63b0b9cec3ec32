package testenv

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killTree SIGKILLs pid's process group and all of pid's descendants.
func killTree(pid int) {
	pids := freezeTree(pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// procPIDs lists the pids in /proc.
func procPIDs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procChildren maps every parent pid to its children, from /proc/*/stat.
func procChildren() map[int][]int {
	kids := map[int][]int{}
	for _, pid := range procPIDs() {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// The command name may contain spaces and parentheses; fields
		// resume after the last ")": state, ppid, ...
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		fields := bytes.Fields(data[i+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(string(fields[1]))
		if err != nil {
			continue
		}
		kids[ppid] = append(kids[ppid], pid)
	}
	return kids
}

// markedProcs lists live processes whose environment contains marker.
func markedProcs(marker []byte) []int {
	self := os.Getpid()
	var out []int
	for _, pid := range procPIDs() {
		if pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil || len(env) == 0 {
			continue
		}
		env = append([]byte{0}, env...)
		if bytes.Contains(env, append([]byte{0}, marker...)) || bytes.HasSuffix(env, marker[:len(marker)-1]) {
			out = append(out, pid)
		}
	}
	return out
}

// freezeTree stops (SIGSTOP) pid's process group and all of pid's
// descendants, so that none of them can fork while it looks, and returns
// them all.
func freezeTree(pid int) []int {
	_ = syscall.Kill(-pid, syscall.SIGSTOP)
	seen := map[int]bool{pid: true}
	for grew, round := true, 0; grew && round < 20; round++ {
		grew = false
		kids := procChildren()
		for stack := []int{pid}; len(stack) > 0; {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, c := range kids[p] {
				if !seen[c] {
					seen[c], grew = true, true
					_ = syscall.Kill(c, syscall.SIGSTOP)
				}
				stack = append(stack, c)
			}
		}
	}
	pids := make([]int, 0, len(seen))
	for p := range seen {
		pids = append(pids, p)
	}
	return pids
}
