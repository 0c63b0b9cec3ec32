package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// cpuProfileEnv names the file a CPU profile of the whole run is written to when set. It is deliberately not
// a flag: it is for measuring skiff itself (bench/ sets it), not for operators.
const cpuProfileEnv = "SKIFF_CPUPROFILE"

// startCPUProfile starts profiling into the file named by SKIFF_CPUPROFILE and returns the function that
// stops it and closes the file; without the variable both do nothing. A profile that cannot be written is
// reported on stderr and never fails the command being measured.
func startCPUProfile(stderr io.Writer) (stop func()) {
	path := os.Getenv(cpuProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "skiff: %s: %v\n", cpuProfileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "skiff: %s: %v\n", cpuProfileEnv, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "skiff: %s: %v\n", cpuProfileEnv, err)
		}
	}
}
