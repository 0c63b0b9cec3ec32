package ship

import "sync/atomic"

// Counter counts what an upload has sent so far, for live displays; the send readers add to it as they read.
type Counter struct {
	files, bytes, filesTotal, bytesTotal atomic.Int64
	// milestone receives (without blocking) when the bytes sent pass another tenth of the total, so that a
	// display learns of every tenth however fast the upload goes.
	milestone chan struct{}
}

// NewCounter returns a counter with nothing sent.
func NewCounter() *Counter {
	return &Counter{milestone: make(chan struct{}, 1)}
}

// Milestone receives when the bytes sent pass another tenth of the total.
func (t *Counter) Milestone() <-chan struct{} { return t.milestone }

// Counts returns the files and bytes sent so far, and their totals.
func (t *Counter) Counts() (files, filesTotal, bytes, bytesTotal int64) {
	return t.files.Load(), t.filesTotal.Load(), t.bytes.Load(), t.bytesTotal.Load()
}

// addBytes counts n more bytes sent.
func (t *Counter) addBytes(n int64) {
	now := t.bytes.Add(n)
	total := t.bytesTotal.Load()
	if total > 0 && t.milestone != nil && (now-n)*10/total != now*10/total {
		select {
		case t.milestone <- struct{}{}:
		default:
		}
	}
}
