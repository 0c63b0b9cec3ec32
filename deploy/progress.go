package deploy

import (
	"time"

	"github.com/skiffdeploy/skiff/ship"
)

// Progress is one host's step as it runs, sent to Options.Progress for live displays (the CLI draws it; a
// status page can show it too). A step sends one event when it starts, one at least every progressTick
// while it runs (uploads: with files and bytes sent of the totals) and one with Done when it ends. Events of
// one host come in order; those of different hosts interleave.
type Progress struct {
	Host string `json:"host"`
	// Step is the step's name, as in Outcome.Steps: upload, pull, restart, check, before_switch[0], …
	Step string `json:"step"`
	// Done says the step ended (successfully or not).
	Done bool `json:"done,omitempty"`
	// Elapsed is the time since the step started.
	Elapsed time.Duration `json:"elapsed"`
	// Files and Bytes sent so far of FilesTotal and BytesTotal (uploads; zero for other steps).
	Files      int64 `json:"files,omitempty"`
	FilesTotal int64 `json:"files_total,omitempty"`
	Bytes      int64 `json:"bytes,omitempty"`
	BytesTotal int64 `json:"bytes_total,omitempty"`
}

// progressTick is how often a running step reports.
const progressTick = 250 * time.Millisecond

// counterFill puts an upload's counts into a progress event.
func counterFill(c *ship.Counter) func(*Progress) {
	return func(p *Progress) { p.Files, p.FilesTotal, p.Bytes, p.BytesTotal = c.Counts() }
}

// progressing runs fn as step name, reporting its start, its progress every progressTick (and whenever kick
// receives) and its end to opts.Progress; extra, when not nil, fills in the counts of an event.
func (r *hostRun) progressing(name string, extra func(*Progress), kick <-chan struct{}, fn func() error) error {
	if r.opts.Progress == nil {
		return fn()
	}
	start := time.Now()
	send := func(done bool) {
		p := Progress{Host: r.host, Step: name, Done: done, Elapsed: time.Since(start)}
		if extra != nil {
			extra(&p)
		}
		r.opts.Progress(p)
	}
	send(false)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(progressTick)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				send(false)
			case <-kick:
				send(false)
			}
		}
	}()
	err := fn()
	close(stop)
	<-stopped
	send(true)
	return err
}
