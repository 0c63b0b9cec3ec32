package deploy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// TestForEach_StartsNoHostOnceCancelled cancels while the first host runs: no later host starts, and each
// says it was not started.
func TestForEach_StartsNoHostOnceCancelled(t *testing.T) {
	for round := 0; round < 50; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var started atomic.Int32
		errs := ForEach(ctx, 10, 4, func(ctx context.Context, i int) error {
			started.Add(1)
			cancel()
			return nil
		})
		if n := started.Load(); n > 4 {
			t.Fatalf("round %d: %d hosts started after the cancel, want at most the first slot-full", round, n)
		}
		for i, err := range errs[started.Load():] {
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("host %d: %v", i, err)
			}
		}
	}
}
