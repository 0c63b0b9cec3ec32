package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/fleet"
)

// imageSummary is the text-mode line of an image deploy or rollback.
func imageSummary(o *deploy.Outcome) string {
	ic := o.Image
	var b strings.Builder
	if idOf(ic.Before) == idOf(ic.After) {
		fmt.Fprintf(&b, "%s (unchanged)", releaseText(ic.After))
	} else {
		fmt.Fprintf(&b, "%s -> %s", releaseText(ic.Before), releaseText(ic.After))
	}
	if len(ic.Containers) > 0 {
		fmt.Fprintf(&b, "  %s", containersText(ic.Containers))
	}
	fmt.Fprintf(&b, "  %s", o.Duration.Round(10*time.Millisecond))
	return b.String()
}

func idOf(r *deploy.ImageRelease) string {
	if r == nil {
		return ""
	}
	return r.ID
}

func releaseText(r *deploy.ImageRelease) string {
	if r == nil {
		return "-"
	}
	return r.String()
}

func containersText(ctrs []deploy.Container) string {
	parts := make([]string, len(ctrs))
	for i, c := range ctrs {
		s := c.Status
		if c.Health != "" {
			s += "," + c.Health
		}
		parts[i] = fmt.Sprintf("%s=%s", c.Name, s)
	}
	return strings.Join(parts, " ")
}

// imageStatusLines are the lines `skiff status` prints for an image app's containers.
func imageStatusLines(img *deploy.ImageState) []string {
	var lines []string
	for _, ctr := range img.Containers {
		lines = append(lines, fmt.Sprintf("%s %s  %s  %s  restarts %d  started %s", ctr.Short(), ctr.Name, ctr.Image,
			strings.TrimSuffix(ctr.Status+" "+ctr.Health, " "), ctr.RestartCount, rfc3339(ctr.StartedAt)))
	}
	return lines
}

func imageStatusSummary(st *fleet.AppStatus) string {
	return fmt.Sprintf("live %s  %s  check %s", releaseText(st.Image.Live), orDash(containersText(st.Image.Containers)), okText(st.CheckOK))
}
