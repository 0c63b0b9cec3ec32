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
