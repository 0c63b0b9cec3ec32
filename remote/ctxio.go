package remote

import (
	"context"
	"io"
)

// ContextReader makes reads from r fail once ctx ends, for transfers whose library calls (SFTP) take no
// context.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return cancelReader{ctx, r} }

// ContextWriter makes writes to w fail once ctx ends.
func ContextWriter(ctx context.Context, w io.Writer) io.Writer { return cancelWriter{ctx, w} }

type cancelReader struct {
	ctx context.Context
	r   io.Reader
}

func (r cancelReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

type cancelWriter struct {
	ctx context.Context
	w   io.Writer
}

func (w cancelWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}

// SFTPCall runs fn, a series of SFTP requests, until ctx ends: pkg/sftp takes no context, and a request to a
// host that stopped answering waits until keepalive gives the connection up. When ctx ends first, ctx's error
// is returned at once and fn is left to end on its own: its requests are answered, or fail with the
// connection. Closing the client would not end them sooner (pkg/sftp's Close waits for the connection too),
// and would fail the requests of what must still run on a live host (a history line, the unlock).
func SFTPCall(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
