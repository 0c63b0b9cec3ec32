package deploy

import (
	"context"
	"errors"

	"github.com/skiffdeploy/skiff/inventory"
)

// ErrNotStarted is the error of a host whose batch never started because earlier batches failed beyond
// rollout.max_fail.
var ErrNotStarted = errors.New("not started: an earlier batch failed beyond rollout.max_fail")

// Rollout runs job over n hosts in the app's batches, one batch after another, with at most parallel hosts
// in flight. The first batch is the canary: once more than maxFail hosts have failed, no later batch starts.
// It returns each host's error at its index.
func Rollout(ctx context.Context, n int, ro inventory.Rollout, parallel int, job func(ctx context.Context, i int) error) []error {
	if parallel <= 0 {
		parallel = ro.Parallel
	}
	errs := make([]error, n)
	failures := 0
	for _, batch := range ro.Batches(n) {
		if failures > ro.MaxFail {
			for _, i := range batch {
				errs[i] = ErrNotStarted
			}
			continue
		}
		berrs := ForEach(ctx, len(batch), parallel, func(ctx context.Context, k int) error { return job(ctx, batch[k]) })
		for k, err := range berrs {
			errs[batch[k]] = err
			if err != nil {
				failures++
			}
		}
	}
	return errs
}
