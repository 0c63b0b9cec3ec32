package release

import (
	"context"
	"fmt"
)

// warnKey is the context key of the function that receives warnings.
type warnKey struct{}

// WithWarn returns a context whose warnings (problems that do not fail the operation, like a history line
// skipped) go to fn. A host's run sets one that logs them and adds them to its Outcome.
func WithWarn(ctx context.Context, fn func(msg string)) context.Context {
	return context.WithValue(ctx, warnKey{}, fn)
}

// Warn reports a problem that does not fail the operation to the function WithWarn set, if any.
func Warn(ctx context.Context, format string, args ...any) {
	if fn, ok := ctx.Value(warnKey{}).(func(string)); ok && fn != nil {
		fn(fmt.Sprintf(format, args...))
	}
}
