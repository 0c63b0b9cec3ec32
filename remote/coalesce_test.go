package remote

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// gateWriter records its writes; each waits for a token on gate when gate is not nil.
type gateWriter struct {
	mu     sync.Mutex
	writes [][]byte
	gate   chan struct{}
	err    error
	closed bool
}

func (g *gateWriter) Write(p []byte) (int, error) {
	if g.gate != nil {
		<-g.gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, g.err
	}
	g.writes = append(g.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (g *gateWriter) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return nil
}

func (g *gateWriter) snapshot() ([][]byte, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]byte(nil), g.writes...), g.closed
}

// waitFor polls cond for up to 5 s: the coalescer writes from a goroutine of its own.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// idle reports whether nothing is queued.
func (c *coalescer) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf) == 0
}

// TestCoalescer_GathersWritesMadeDuringAWrite checks that a lone write goes out at once and that the writes
// made while it is under way go out together, in order, as copies of what was written.
func TestCoalescer_GathersWritesMadeDuringAWrite(t *testing.T) {
	g := &gateWriter{gate: make(chan struct{})}
	c := newCoalescer(g)
	defer c.Close()
	buf := []byte("first")
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX") // the caller reuses its buffer
	waitFor(t, "the first write to start", c.idle)
	var want bytes.Buffer
	for i := 0; i < 50; i++ {
		p := []byte{byte('a' + i%26), byte('0' + i%10)}
		want.Write(p)
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	g.gate <- struct{}{} // the first write, under way since the first Write
	g.gate <- struct{}{} // everything written meanwhile
	waitFor(t, "two writes", func() bool { w, _ := g.snapshot(); return len(w) == 2 })
	w, _ := g.snapshot()
	if string(w[0]) != "first" || !bytes.Equal(w[1], want.Bytes()) {
		t.Errorf("writes = %q, want \"first\" then %q", w, want.Bytes())
	}
}

// TestCoalescer_BoundsWhatItHolds checks that a writer waits once coalesceMax is queued behind a write under
// way, and goes on when it is written.
func TestCoalescer_BoundsWhatItHolds(t *testing.T) {
	g := &gateWriter{gate: make(chan struct{})}
	c := newCoalescer(g)
	defer c.Close()
	c.Write([]byte("x")) // under way, held at the gate
	waitFor(t, "the first write to start", c.idle)
	chunk := make([]byte, coalesceMax/2)
	c.Write(chunk)
	c.Write(chunk) // exactly full
	wrote := make(chan struct{})
	go func() {
		c.Write([]byte("over"))
		close(wrote)
	}()
	select {
	case <-wrote:
		t.Fatal("a write past coalesceMax did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	g.gate <- struct{}{}
	<-wrote
	close(g.gate)
	waitFor(t, "everything written", func() bool {
		w, _ := g.snapshot()
		n := 0
		for _, p := range w {
			n += len(p)
		}
		return n == 1+coalesceMax+4
	})
}

// TestCoalescer_Ends checks what Write returns once the channel failed or the coalescer was closed, and that
// Close closes the channel.
func TestCoalescer_Ends(t *testing.T) {
	broken := errors.New("channel broken")
	tests := []struct {
		name string
		end  func(*coalescer, *gateWriter)
		want error
	}{
		{name: "closed", end: func(c *coalescer, _ *gateWriter) { c.Close() }, want: io.ErrClosedPipe},
		{name: "write failed", end: func(c *coalescer, g *gateWriter) {
			g.mu.Lock()
			g.err = broken
			g.mu.Unlock()
			c.Write([]byte("lost"))
			waitFor(t, "the failure", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.err != nil })
		}, want: broken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &gateWriter{}
			c := newCoalescer(g)
			tc.end(c, g)
			if _, err := c.Write([]byte("late")); !errors.Is(err, tc.want) {
				t.Errorf("Write after the end: %v, want %v", err, tc.want)
			}
			c.Close()
			if _, closed := g.snapshot(); !closed {
				t.Error("Close did not close the channel")
			}
		})
	}
}
