package serve

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// maxLog bounds one job's log; what comes after is dropped with a note.
const maxLog = 1 << 20

// liveLog is the log of a running job: lines appended by the engine's events, read by the API and streamed
// to whoever follows it.
type liveLog struct {
	mu      sync.Mutex
	buf     []byte
	full    bool
	done    bool
	changed chan struct{} // closed and replaced on every change
}

func newLiveLog() *liveLog { return &liveLog{changed: make(chan struct{})} }

// add appends one line; newlines inside it become separate lines.
func (l *liveLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.full || l.done {
		return
	}
	line = strings.TrimRight(line, "\n")
	if len(l.buf)+len(line)+1 > maxLog {
		l.buf = append(l.buf, "… log truncated at 1 MiB\n"...)
		l.full = true
	} else {
		l.buf = append(append(l.buf, line...), '\n')
	}
	l.notify()
}

// addf appends a line about the job itself, stamped with the time.
func (l *liveLog) addf(format string, args ...any) {
	l.add(time.Now().UTC().Format("15:04:05") + " " + fmt.Sprintf(format, args...))
}

func (l *liveLog) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// finish marks the end of the log and wakes the followers.
func (l *liveLog) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		l.notify()
	}
}

// bytes returns a copy of the log so far.
func (l *liveLog) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.buf...)
}

// since returns what was written after offset, whether the log is finished, and a channel closed at the
// next change.
func (l *liveLog) since(offset int) (data []byte, done bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if offset < len(l.buf) {
		data = append([]byte(nil), l.buf[offset:]...)
	}
	return data, l.done, l.changed
}
