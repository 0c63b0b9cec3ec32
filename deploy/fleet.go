package deploy

import (
	"context"
	"fmt"
	"sync"
)

// ForEach runs fn for the hosts 0..n-1 with at most parallel of them in flight and returns each host's error
// at its index. It does not stop at the first failure: one broken host must not hide the state of the others.
// When ctx ends (the first Ctrl-C), hosts that have not started yet get ctx's error, as not started, without
// fn being called.
func ForEach(ctx context.Context, n, parallel int, fn func(ctx context.Context, i int) error) []error {
	if parallel < 1 {
		parallel = 1
	}
	errs := make([]error, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		if ctx.Err() == nil {
			select { // a free slot and an ended ctx at once: the slot may win, so ctx is looked at again below
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			for j := i; j < n; j++ {
				errs[j] = fmt.Errorf("not started: %w", ctx.Err())
			}
			wg.Wait()
			return errs
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fn(ctx, i)
		}(i)
	}
	wg.Wait()
	return errs
}
