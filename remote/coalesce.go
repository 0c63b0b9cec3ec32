package remote

import (
	"io"
	"runtime"
	"sync"
)

// coalesceMax bounds what a coalescer holds: past it, writers wait for the write under way. Two SSH channel
// packets' worth, so that a burst of small requests goes in one write and a large upload is not held up.
const coalesceMax = 64 << 10

// coalescer gathers the writes of pkg/sftp's client into as few writes on the SSH channel as the channel
// takes. The client writes every request on its own, in two writes when it carries data (its header, then the
// data), and each write becomes an SSH packet: encrypted, sent with a syscall, read and decrypted by the
// target's sshd and passed on to its SFTP server, one by one. The coalescer writes at once when nothing is
// under way, and while a write is under way the requests sent meanwhile pile up and go in the next one: a
// burst of pipelined requests costs a few packets instead of one or two per request, and a lone request is
// not delayed. Writes are copied, since the client reuses its buffers. A failed write ends the coalescer:
// every later Write returns its error.
type coalescer struct {
	w      io.WriteCloser
	mu     sync.Mutex
	cond   *sync.Cond // signals data to write, room to write into, and the end
	buf    []byte
	closed bool
	err    error
}

func newCoalescer(w io.WriteCloser) *coalescer {
	c := &coalescer{w: w}
	c.cond = sync.NewCond(&c.mu)
	go c.flush()
	return c
}

// Write queues p for the next write on the channel; it waits while the queue is full.
func (c *coalescer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closed && len(c.buf) > 0 && len(c.buf)+len(p) > coalesceMax {
		c.cond.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closed:
		return 0, io.ErrClosedPipe
	}
	c.buf = append(c.buf, p...)
	c.cond.Broadcast()
	return len(p), nil
}

// flush writes what is queued, all of it at a time, until the coalescer is closed or a write fails.
func (c *coalescer) flush() {
	var out []byte
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for len(c.buf) == 0 && !c.closed {
			c.cond.Wait()
		}
		if c.closed {
			return
		}
		// The answers to a burst of requests arrive together and wake their callers one by one: a yield lets
		// those already woken queue their next requests before the write (a fifth as many writes in a clone).
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
		if c.closed {
			return
		}
		out, c.buf = c.buf, out[:0]
		c.cond.Broadcast()
		c.mu.Unlock()
		_, err := c.w.Write(out)
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.closed = true
			c.cond.Broadcast()
			return
		}
	}
}

// Close closes the channel's input at once. What is still queued belongs to calls waiting for an answer, which
// the closing client ends anyway.
func (c *coalescer) Close() error {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	return c.w.Close()
}
