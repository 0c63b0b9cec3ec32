package ship

import (
	"errors"
	"io"
	"sync"
)

// chunkPipe is an in-memory pipe that holds up to a fixed number of chunks in flight, so that the side writing
// a tar stream (reading and hashing files) works ahead of the side sending it (encrypting it into the SSH
// channel) instead of waiting for it at every write, as io.Pipe does. The two sides then run on two cores.
// Memory is bounded by chunks × chunkSize, whatever the size of the files.
type chunkPipe struct {
	full chan []byte // written chunks, in order
	free chan []byte // chunks ready to be written into

	wbuf []byte // the chunk being filled by Write

	rbuf []byte // what is left of the chunk being drained by Read
	rown []byte // rbuf's whole chunk, returned to free once drained

	mu     sync.Mutex
	werr   error         // set by CloseWithError: what the reader sees after the last chunk
	rerr   error         // set by the reader's CloseWithError: what further writes return
	closed chan struct{} // closed by the reader's CloseWithError
	wonce  sync.Once
	ronce  sync.Once
}

func newChunkPipe(chunks, chunkSize int) *chunkPipe {
	p := &chunkPipe{full: make(chan []byte, chunks), free: make(chan []byte, chunks), closed: make(chan struct{})}
	for i := 0; i < chunks; i++ {
		p.free <- make([]byte, 0, chunkSize)
	}
	return p
}

// Write copies b into the pipe, blocking only while every chunk is in flight.
func (p *chunkPipe) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if p.wbuf == nil {
			select {
			case p.wbuf = <-p.free:
			case <-p.closed:
				return n, p.readErr()
			}
		}
		k := copy(p.wbuf[len(p.wbuf):cap(p.wbuf)], b)
		p.wbuf = p.wbuf[:len(p.wbuf)+k]
		n, b = n+k, b[k:]
		if len(p.wbuf) == cap(p.wbuf) {
			if err := p.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush hands the chunk being filled to the reader.
func (p *chunkPipe) flush() error {
	if len(p.wbuf) == 0 {
		return nil
	}
	select {
	case p.full <- p.wbuf:
		p.wbuf = nil
		return nil
	case <-p.closed:
		return p.readErr()
	}
}

// CloseWithError ends the writing side: the reader gets what was written, then err (io.EOF when nil).
// Only the first call counts; Write must not be called after it.
func (p *chunkPipe) CloseWithError(err error) error {
	p.wonce.Do(func() {
		ferr := p.flush()
		if err == nil {
			err = ferr
		}
		if err == nil {
			err = io.EOF
		}
		p.mu.Lock()
		p.werr = err
		p.mu.Unlock()
		close(p.full)
	})
	return nil
}

// Reader returns the reading side of the pipe.
func (p *chunkPipe) Reader() *chunkPipeReader { return &chunkPipeReader{p} }

func (p *chunkPipe) readErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rerr
}

func (p *chunkPipe) writeErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.werr
}

// chunkPipeReader is the reading side of a chunkPipe. It implements io.WriterTo, so that io.Copy hands whole
// chunks to the destination without another copy.
type chunkPipeReader struct{ p *chunkPipe }

// next makes rbuf the next written chunk, or returns the writer's closing error once there is none.
func (r chunkPipeReader) next() error {
	p := r.p
	if p.rown != nil {
		p.free <- p.rown[:0]
		p.rown = nil
	}
	select {
	case b, ok := <-p.full:
		if !ok {
			return p.writeErr()
		}
		p.rbuf, p.rown = b, b
		return nil
	case <-p.closed:
		return p.readErr()
	}
}

func (r chunkPipeReader) Read(b []byte) (int, error) {
	p := r.p
	select {
	case <-p.closed:
		return 0, p.readErr()
	default:
	}
	for len(p.rbuf) == 0 {
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	n := copy(b, p.rbuf)
	p.rbuf = p.rbuf[n:]
	return n, nil
}

// WriteTo writes everything the writer writes to w, a chunk at a time, until the writer closes.
func (r chunkPipeReader) WriteTo(w io.Writer) (int64, error) {
	p := r.p
	var total int64
	for {
		for len(p.rbuf) == 0 {
			if err := r.next(); errors.Is(err, io.EOF) {
				return total, nil
			} else if err != nil {
				return total, err
			}
		}
		n, err := w.Write(p.rbuf)
		total += int64(n)
		p.rbuf = p.rbuf[n:]
		if err != nil {
			return total, err
		}
	}
}

// CloseWithError ends the reading side: pending and later writes fail with err (io.ErrClosedPipe when nil).
func (r chunkPipeReader) CloseWithError(err error) error {
	if err == nil {
		err = io.ErrClosedPipe
	}
	r.p.ronce.Do(func() {
		r.p.mu.Lock()
		r.p.rerr = err
		r.p.mu.Unlock()
		close(r.p.closed)
	})
	return nil
}
