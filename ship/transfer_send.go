package ship

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/sync/errgroup"

	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// Content goes as one tar stream, when the target has GNU tar, from tarMinFiles files (where per-file SFTP
// round trips start to cost more than the stream's one extra session) or tarMinBytes bytes (where the SFTP
// packet framing costs more than a plain stream, which also hashes on another core than it encrypts).
const (
	tarMinFiles = 32
	tarMinBytes = 8 << 20
)

// The tar stream is framed and hashed up to tarPipeChunks chunks ahead of the SSH channel that encrypts and
// sends it; chunks are tarPipeChunkSize for large streams, smaller for small ones (tarPipeSize).
const (
	tarPipeChunks    = 4
	tarPipeChunkSize = 256 << 10
)

// errStreamAborted ends the local side of a tar stream once the remote side has stopped reading it.
var errStreamAborted = errors.New("tar stream aborted")

// sendSFTP uploads files over the connection's shared SFTP client, s.concurrency at a time. Each goes to a
// temporary name, gets its mode, and is renamed over whatever the path held (a hard link into the base
// release, which therefore keeps its content).
func (s *shipper) sendSFTP(ctx context.Context, files []Entry) error {
	client, err := s.c.SFTP(ctx)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	rel := s.layout.Release(s.id)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.concurrency)
	for _, e := range files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return s.putFile(gctx, client, rel, e) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

func (s *shipper) putFile(ctx context.Context, client *sftp.Client, rel string, e Entry) error {
	src, err := os.Open(filepath.Join(s.localRoot, filepath.FromSlash(e.Path)))
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer src.Close()
	dst := path.Join(rel, e.Path)
	tmp := shipTempName(dst, s.token)
	r := s.newSendReader(ctx, src, e)
	err = release.WriteFile(client, tmp, dst, os.O_WRONLY|os.O_EXCL, e.Mode, func(f *sftp.File) error {
		if _, err := f.ReadFrom(r); err != nil {
			return err
		}
		return r.check()
	})
	if err != nil {
		return fmt.Errorf("upload %q: %w", e.Path, err)
	}
	s.sent(r)
	return nil
}

// sendTar streams files as one tar archive into GNU tar on the target, which extracts them into the new
// release. -U unlinks whatever a path held before writing it, so hard links into the base release are
// replaced, never written through; -p keeps the modes exactly.
func (s *shipper) sendTar(ctx context.Context, files []Entry) error {
	_, err := s.streamTar(ctx, remote.Command{Argv: tarExtract, Dir: s.layout.Release(s.id)}, files)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	return nil
}

// tarExtract unpacks a tar stream into the current directory. 256-block (128 KiB) records instead of the
// default 20 save the target most of its read calls; -B reassembles the short reads a pipe gives into whole
// records.
var tarExtract = []string{"tar", "-x", "-b", "256", "-B", "-p", "-U", "--no-same-owner", "-f", "-"}

// prepareAndExtract runs the prepare script and the extraction of files in one remote session
// (preparedExtract). sent is false, with no error, when the target has no GNU tar: the release is prepared and
// the files must go over SFTP.
func (s *shipper) prepareAndExtract(ctx context.Context, script []byte, files []Entry) (sent bool, err error) {
	wrapper := preparedExtract
	if s.gnuTar {
		wrapper = preparedExtractKnown
	}
	cmd := remote.Command{Argv: append([]string{"sh", "-c", wrapper, "skiff", string(script)}, tarExtract...)}
	mark := s.mark()
	res, err := s.streamTar(ctx, cmd, files)
	prepared := res != nil && bytes.Contains(res.Stdout, []byte(preparedMarker+"\n"))
	var ee *remote.ExitError
	switch {
	case err == nil:
		return true, nil
	case !prepared && errors.As(err, &ee) && ee.Status == noGNUTar:
		s.rewind(mark) // what went into the stream was not read
		return false, nil
	case !prepared && ee != nil:
		return false, fmt.Errorf("prepare release: %w", err)
	}
	return false, fmt.Errorf("upload: %w", err)
}

// streamTar runs cmd with files as a tar stream on its standard input. Its error is the stream's, or else the
// command's (an extraction on the target).
func (s *shipper) streamTar(ctx context.Context, cmd remote.Command, files []Entry) (*remote.Result, error) {
	size := tarPipeSize(files)
	pipe := newChunkPipe(tarPipeChunks, size)
	written := make(chan error, 1)
	go func() {
		err := s.writeTar(ctx, pipe, files, size)
		pipe.CloseWithError(err)
		written <- err
	}()
	stream := pipe.Reader()
	cmd.Stdin = stream
	res, runErr := s.c.Run(ctx, cmd)
	stream.CloseWithError(errStreamAborted)
	if err := <-written; err != nil && !errors.Is(err, errStreamAborted) {
		return res, err
	}
	if runErr != nil {
		return res, fmt.Errorf("extract on target: %w", runErr)
	}
	return res, nil
}

// writeTar writes files as a tar archive to w, reading them bufSize bytes at a time. Directories and symlinks
// among them (a release without a base, see makeFreshSFTP) are written as such, with their manifest modes.
func (s *shipper) writeTar(ctx context.Context, w io.Writer, files []Entry, bufSize int) error {
	tw := tar.NewWriter(w)
	buf := make([]byte, bufSize)
	for _, e := range files {
		if err := s.addToTar(ctx, tw, e, buf); err != nil {
			return err
		}
	}
	return tw.Close()
}

func (s *shipper) addToTar(ctx context.Context, tw *tar.Writer, e Entry, buf []byte) error {
	switch e.Type {
	case TypeDir, TypeSymlink:
		h := &tar.Header{Typeflag: tar.TypeDir, Name: e.Path + "/", Mode: int64(e.Mode), ModTime: s.started, Format: tar.FormatGNU}
		if e.Type == TypeSymlink {
			h.Typeflag, h.Name, h.Linkname = tar.TypeSymlink, e.Path, e.Link
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%q: %w", e.Path, err)
		}
		return nil
	}
	src, err := os.Open(filepath.Join(s.localRoot, filepath.FromSlash(e.Path)))
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	err = tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     e.Path,
		Size:     e.Size,
		Mode:     int64(e.Mode),
		ModTime:  fi.ModTime().Truncate(time.Second),
		Format:   tar.FormatGNU, // long and non-UTF-8 names without PAX records, which old tars mishandle
	})
	if err != nil {
		return fmt.Errorf("%q: %w", e.Path, err)
	}
	r := s.newSendReader(ctx, src, e)
	if _, err := io.CopyBuffer(tw, r, buf); err != nil {
		return fmt.Errorf("%q: %w", e.Path, err)
	}
	if err := r.check(); err != nil {
		return fmt.Errorf("%q: %w", e.Path, err)
	}
	s.sent(r)
	return nil
}

// sent counts a file whose content reached the target and matched its manifest entry.
func (s *shipper) sent(r *sendReader) {
	atomic.AddInt64(&s.stats.Files, 1)
	atomic.AddInt64(&s.stats.Bytes, r.e.Size)
	s.progress.files.Add(1)
	switch {
	case r.deferred:
		s.settled.put(r.e.Path, r.sum)
	case r.hash != nil:
		atomic.AddInt64(&s.stats.Rehashed, r.e.Size)
	}
}

// sendMark is what a shipper has counted as sent at one point, so that a send that did not take can be
// taken back (see sendFresh). Nothing may be sending meanwhile.
type sendMark struct{ files, bytes, rehashed, progressFiles, progressBytes int64 }

func (s *shipper) mark() sendMark {
	return sendMark{s.stats.Files, s.stats.Bytes, s.stats.Rehashed, s.progress.files.Load(), s.progress.bytes.Load()}
}

func (s *shipper) rewind(m sendMark) {
	s.stats.Files, s.stats.Bytes, s.stats.Rehashed = m.files, m.bytes, m.rehashed
	s.progress.files.Store(m.progressFiles)
	s.progress.bytes.Store(m.progressBytes)
}

// sendReader reads a local file for sending: exactly the size the manifest records (which it also reports
// through Size, so that pkg/sftp writes concurrently), and lets check prove that what was sent is what the
// manifest says. A file that stat shows unchanged since Scan hashed it (same size and modification time,
// before and after the send — rsync's quick check) is not hashed a second time; any other is hashed on the
// way. Reads fail once ctx ends.
type sendReader struct {
	ctx   context.Context
	r     *os.File
	e     Entry
	n     int64
	hash  hash.Hash // nil when the stamp vouches for the content
	stamp fileStamp
	// deferred is set for a file whose hash is taken here, for the manifest (ScanDeferred): stamp is then
	// what the scan saw, which must still hold at the end, and sum the hash once check has passed.
	deferred bool
	sum      string
	progress *Counter // counts the bytes read, for live displays
}

func (s *shipper) newSendReader(ctx context.Context, r *os.File, e Entry) *sendReader {
	sr := &sendReader{ctx: ctx, r: r, e: e, progress: s.progress}
	if s.deferred.pending(e) {
		sr.hash, sr.stamp, sr.deferred = sha256.New(), s.deferred.stamp(e.Path), true
	} else if st, ok := s.stamps[e.Path]; ok && st.size == e.Size && sameStamp(r, st) {
		sr.stamp = st
	} else {
		sr.hash = sha256.New()
	}
	return sr
}

// sameStamp reports whether the open file still has the size and modification time of st.
func sameStamp(f *os.File, st fileStamp) bool {
	fi, err := f.Stat()
	return err == nil && stampOf(fi) == st
}

// Size is the number of bytes the reader yields.
func (s *sendReader) Size() int64 { return s.e.Size }

func (s *sendReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	left := s.e.Size - s.n
	if left <= 0 {
		var one [1]byte
		if k, _ := s.r.Read(one[:]); k > 0 {
			return 0, s.changed()
		}
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	k, err := s.r.Read(p)
	if s.hash != nil {
		s.hash.Write(p[:k])
	}
	s.n += int64(k)
	s.progress.addBytes(int64(k))
	if errors.Is(err, io.EOF) {
		if s.n < s.e.Size {
			return k, s.changed()
		}
		err = nil
	}
	return k, err
}

// check reports whether everything read matches the manifest entry.
func (s *sendReader) check() error {
	switch {
	case s.n != s.e.Size:
		return s.changed()
	case s.hash == nil:
		if !sameStamp(s.r, s.stamp) {
			return s.changed()
		}
	case s.deferred:
		if !sameStamp(s.r, s.stamp) {
			return s.changed()
		}
		s.sum = hex.EncodeToString(s.hash.Sum(nil))
	case hex.EncodeToString(s.hash.Sum(nil)) != s.e.SHA256:
		return s.changed()
	}
	return nil
}

func (s *sendReader) changed() error { return ChangedSinceScan(s.e.Path) }

// ChangedSinceScan is the error for a local file that is no longer what the scan saw.
func ChangedSinceScan(p string) error {
	return fmt.Errorf("local file %q changed since it was scanned; scan again", p)
}
