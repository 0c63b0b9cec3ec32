package bench

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/remote"
)

// remoteCounts is outcome.remote of `skiff deploy --json` (docs/json.md): what one host's connection was asked
// for during the run. Fields an older skiff does not report stay -1.
type remoteCounts = remote.Counts

// unreported are counts before a report filled them in.
var unreported = remoteCounts{Commands: -1, SFTPStarts: -1, SFTPRequests: -1, Tunnels: -1, BytesSent: -1, BytesReceived: -1}

// skiffRun is what one skiff run's JSON report says: the median host's duration of each step, and the counts and
// upload step of the report's first host.
type skiffRun struct {
	steps  map[string]time.Duration
	host   string
	counts remoteCounts
	upload time.Duration
}

// skiffCost sums up skiff's runs of one kind at one fleet size: the counts of its first host (the same every
// round), that host's upload step and every step of the median host, medians over the rounds.
type skiffCost struct {
	hosts  int
	mode   string
	host   string
	counts remoteCounts
	upload time.Duration
	steps  string
}

// skiffReport checks skiff's JSON report (every host ok) and returns what it says.
func (fb *fleetBench) skiffReport(out []byte) *skiffRun {
	var rep struct {
		Hosts []struct {
			Host  string `json:"host"`
			OK    bool   `json:"ok"`
			Error string `json:"error"`
			Steps []struct {
				Step string `json:"step"`
				MS   int64  `json:"duration_ms"`
			} `json:"steps"`
			Remote *json.RawMessage `json:"remote"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || len(rep.Hosts) != len(fb.env.Hosts) {
		fb.b.Fatalf("skiff report: %v\n%s", err, tail(out, 4000))
	}
	run := &skiffRun{host: rep.Hosts[0].Host, upload: -1,
		counts: unreported}
	if r := rep.Hosts[0].Remote; r != nil {
		if err := json.Unmarshal(*r, &run.counts); err != nil {
			fb.b.Fatalf("skiff report: remote: %v", err)
		}
	}
	per := map[string][]time.Duration{}
	for i, h := range rep.Hosts {
		if !h.OK {
			fb.b.Fatalf("skiff: %s failed: %s", h.Host, h.Error)
		}
		for _, s := range h.Steps {
			d := time.Duration(s.MS) * time.Millisecond
			per[s.Step] = append(per[s.Step], d)
			if i == 0 && s.Step == "upload" {
				run.upload = d
			}
		}
	}
	run.steps = map[string]time.Duration{}
	for step, ds := range per {
		run.steps[step] = medianDuration(ds)
	}
	return run
}

// costOf sums up skiff's runs of one kind at one fleet size.
func costOf(hosts int, mode string, runs []skiffRun) skiffCost {
	c := skiffCost{hosts: hosts, mode: mode, upload: -1, counts: unreported}
	if len(runs) == 0 {
		return c
	}
	last := runs[len(runs)-1]
	c.host, c.counts = last.host, last.counts
	var ups []time.Duration
	var steps []map[string]time.Duration
	for _, r := range runs {
		ups = append(ups, r.upload)
		steps = append(steps, r.steps)
	}
	c.upload, c.steps = medianDuration(ups), stepSummary(steps)
	return c
}

// stepSummary renders the median over rounds of each step's median-host duration, in the order of a deploy.
func stepSummary(rounds []map[string]time.Duration) string {
	per := map[string][]time.Duration{}
	for _, r := range rounds {
		for step, d := range r {
			per[step] = append(per[step], d)
		}
	}
	order := map[string]int{"lock": 0, "upload": 1, "shared": 2, "switch": 3, "restart": 4, "check": 5, "retain": 6}
	names := make([]string, 0, len(per))
	for s := range per {
		names = append(names, s)
	}
	sort.Slice(names, func(i, j int) bool {
		oi, ok1 := order[names[i]]
		oj, ok2 := order[names[j]]
		if ok1 != ok2 {
			return ok1
		}
		if oi != oj {
			return oi < oj
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, s := range names {
		parts[i] = fmt.Sprintf("%s %s", s, medianDuration(per[s]).Round(time.Millisecond))
	}
	return strings.Join(parts, ", ")
}
