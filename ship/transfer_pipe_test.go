package ship

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// pipeInput is data that no two chunk-sized windows of repeat, so a lost, doubled or reordered chunk shows.
func pipeInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// onlyReader hides every method but Read, so io.Copy cannot use WriteTo.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(b []byte) (int, error) { return o.r.Read(b) }

func TestChunkPipe_DeliversEverythingInOrder(t *testing.T) {
	const chunks, size = 3, 64
	cases := []struct {
		name    string
		total   int
		write   int // bytes per Write call
		read    int // bytes per Read call; 0 drains through WriteTo
		closeAt int // 0: the writer closes after its last write
	}{
		{name: "nothing", total: 0, write: 1},
		{name: "one byte writes, small reads", total: 1000, write: 1, read: 7},
		{name: "exact chunks", total: chunks * size * 4, write: size, read: size},
		{name: "writes larger than the whole pipe", total: 10 * chunks * size, write: 5 * chunks * size, read: 100},
		{name: "short last chunk through WriteTo", total: 5*size + 3, write: 17},
		{name: "writes larger than the whole pipe through WriteTo", total: 10 * chunks * size, write: 4 * chunks * size},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := pipeInput(tc.total)
			p := newChunkPipe(chunks, size)
			wrote := make(chan error, 1)
			go func() {
				for off := 0; off < len(in); off += tc.write {
					end := min(off+tc.write, len(in))
					if n, err := p.Write(in[off:end]); err != nil || n != end-off {
						wrote <- errors.Join(err, errors.New("short write"))
						p.CloseWithError(err)
						return
					}
				}
				wrote <- nil
				p.CloseWithError(nil)
			}()
			var out bytes.Buffer
			var err error
			if tc.read == 0 {
				_, err = io.Copy(&out, p.Reader())
			} else {
				_, err = io.CopyBuffer(&out, onlyReader{p.Reader()}, make([]byte, tc.read))
			}
			if err != nil {
				t.Fatalf("copy: %v", err)
			}
			if err := <-wrote; err != nil {
				t.Fatalf("write: %v", err)
			}
			if !bytes.Equal(out.Bytes(), in) {
				t.Fatalf("read %d bytes that differ from the %d written", out.Len(), len(in))
			}
		})
	}
}

func TestChunkPipe_WriterErrorReachesReader(t *testing.T) {
	errBroken := errors.New("source broken")
	cases := []struct {
		name  string
		drain func(r *chunkPipeReader) ([]byte, error)
	}{
		{name: "Read", drain: func(r *chunkPipeReader) ([]byte, error) { return io.ReadAll(onlyReader{r}) }},
		{name: "WriteTo", drain: func(r *chunkPipeReader) ([]byte, error) {
			var b bytes.Buffer
			_, err := r.WriteTo(&b)
			return b.Bytes(), err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newChunkPipe(2, 8)
			go func() {
				p.Write([]byte("written before it broke"))
				p.CloseWithError(errBroken)
			}()
			got, err := tc.drain(p.Reader())
			if !errors.Is(err, errBroken) {
				t.Errorf("err = %v, want the writer's error", err)
			}
			if string(got) != "written before it broke" {
				t.Errorf("read %q, want everything written before the error", got)
			}
		})
	}
}

func TestChunkPipe_ReaderCloseUnblocksWriter(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want error
	}{
		{name: "with an error", err: errStreamAborted, want: errStreamAborted},
		{name: "without one", err: nil, want: io.ErrClosedPipe},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newChunkPipe(2, 8)
			wrote := make(chan error, 1)
			go func() {
				_, err := p.Write(make([]byte, 1000)) // far more than the pipe holds: blocks until the reader closes
				wrote <- err
			}()
			r := p.Reader()
			if _, err := io.ReadFull(r, make([]byte, 5)); err != nil {
				t.Fatal(err)
			}
			r.CloseWithError(tc.err)
			select {
			case err := <-wrote:
				if !errors.Is(err, tc.want) {
					t.Errorf("write err = %v, want %v", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Write still blocked after the reader closed")
			}
			if _, err := r.Read(make([]byte, 1)); !errors.Is(err, tc.want) {
				t.Errorf("read after close: err = %v, want %v", err, tc.want)
			}
		})
	}
}
