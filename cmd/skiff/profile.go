package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// cpuProfileEnv names the file a CPU profile of the whole run is written to when set, and memProfileEnv the
// file a heap profile is written to. They are deliberately not flags: they are for measuring skiff itself
// (bench/ sets them), not for operators.
const (
	cpuProfileEnv = "SKIFF_CPUPROFILE"
	memProfileEnv = "SKIFF_MEMPROFILE"
)

// memProfileRate is the heap profile's sampling rate while SKIFF_MEMPROFILE is set: one sample per 4 KiB
// allocated instead of the runtime's 512 KiB, so that small per-host buffers show.
const memProfileRate = 4 << 10

// startProfiles starts the profiles that SKIFF_CPUPROFILE and SKIFF_MEMPROFILE ask for and returns the function
// that stops them and writes them; without the variables both do nothing. A profile that cannot be written is
// reported on stderr and never fails the command being measured.
func startProfiles(stderr io.Writer) (stop func()) {
	stopCPU := startCPUProfile(stderr)
	stopMem := startMemProfile(stderr)
	return func() {
		stopCPU()
		stopMem()
	}
}

// startCPUProfile starts profiling into the file named by SKIFF_CPUPROFILE and returns the function that
// stops it and closes the file.
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

// startMemProfile, with SKIFF_MEMPROFILE=FILE, samples the heap every few milliseconds and keeps the heap
// profile taken when the live heap was at its highest (a heap profile shows the heap as of the last GC, so
// this is the peak within one GC cycle). The returned function writes it to FILE, writes the profile at exit
// (whose alloc_space counts everything the run allocated) to FILE.exit, and the peaks of the runtime's
// memory classes to FILE.txt.
func startMemProfile(stderr io.Writer) (stop func()) {
	path := os.Getenv(memProfileEnv)
	if path == "" {
		return func() {}
	}
	runtime.MemProfileRate = memProfileRate
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/sched/goroutines:goroutines"},
	}
	peaks := make([]uint64, len(samples))
	var peakProfile bytes.Buffer
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(samples)
			for i, s := range samples {
				if v := s.Value.Uint64(); v > peaks[i] {
					peaks[i] = v
					if i == 0 {
						peakProfile.Reset()
						_ = pprof.Lookup("heap").WriteTo(&peakProfile, 0)
					}
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		var exit bytes.Buffer
		_ = pprof.Lookup("heap").WriteTo(&exit, 0)
		var text bytes.Buffer
		for i, s := range samples {
			fmt.Fprintf(&text, "peak %s %d\n", s.Name, peaks[i])
		}
		for name, b := range map[string][]byte{path: peakProfile.Bytes(), path + ".exit": exit.Bytes(), path + ".txt": text.Bytes()} {
			if err := os.WriteFile(name, b, 0o644); err != nil {
				fmt.Fprintf(stderr, "skiff: %s: %v\n", memProfileEnv, err)
			}
		}
	}
}
