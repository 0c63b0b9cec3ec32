package ship

import "io"

// Buffers are sized to the work, not to the worst case: a fleet deploy holds one set per host at once, and
// most deploys move a few KiB per host, while the largest transfers still get buffers big enough to keep the
// SSH channel and SFTP's concurrent requests full.
const (
	// sftpPacket is the payload of one SFTP read or write request (pkg/sftp's default), the natural unit of a
	// small buffer that talks to SFTP.
	sftpPacket = 32 << 10
	// maxManifestIO bounds a manifest's write and read buffers: 1 MiB goes out or comes back as 32 concurrent
	// SFTP requests.
	maxManifestIO = 1 << 20
	// manifestLineGuess is what one entry of an encoded manifest takes besides its path and link target: the
	// field names, type, mode, size and sha256 (about 110 bytes).
	manifestLineGuess = 112
)

// encodedSize estimates the size of m encoded (Encode), for sizing its write buffer.
func encodedSize(m *Manifest) int {
	n := 0
	for _, e := range m.Entries {
		n += manifestLineGuess + len(e.Path) + len(e.Link)
	}
	return n
}

// clampSize returns n rounded up to a multiple of 4 KiB and kept within [lo, hi].
func clampSize(n, lo, hi int) int {
	n = (n + 4<<10 - 1) &^ (4<<10 - 1)
	return min(max(n, lo), hi)
}

// tarPipeSize returns the chunk size of the tar stream's pipe for files: the stream's size over
// tarPipeChunks × 8, so that a small stream still runs ahead of the channel by several chunks, between one
// SFTP packet's worth and tarPipeChunkSize, which large streams (from 8 MiB) get whole.
func tarPipeSize(files []Entry) int {
	var total int64
	for _, e := range files {
		total += 512 + (e.Size+511)&^511 // a header block, the content padded to whole blocks
		if total >= tarPipeChunks*8*tarPipeChunkSize {
			return tarPipeChunkSize
		}
	}
	return clampSize(int(total/(tarPipeChunks*8)), sftpPacket, tarPipeChunkSize)
}

// growingReader reads r into a buffer that starts at one SFTP packet and grows fourfold, up to max, each time a
// read fills it: a manifest of a few KiB costs one small request, and a large one is read in large concurrent
// ones after a few reads (a 1.5 MB manifest in five: 32 KiB, 128 KiB, 512 KiB, 1 MiB, 1 MiB). It reads ahead of
// its caller, like bufio.Reader.
type growingReader struct {
	r        io.Reader
	buf      []byte
	off, end int // buf[off:end] is read and not yet returned
	max      int
	err      error
}

func newGrowingReader(r io.Reader, max int) *growingReader {
	return &growingReader{r: r, buf: make([]byte, min(sftpPacket, max)), max: max}
}

func (g *growingReader) Read(p []byte) (int, error) {
	if g.off == g.end {
		if g.err != nil {
			return 0, g.err
		}
		if g.end == len(g.buf) && len(g.buf) < g.max {
			g.buf = make([]byte, min(4*len(g.buf), g.max))
		}
		g.off = 0
		g.end, g.err = g.r.Read(g.buf)
		if g.end == 0 {
			return 0, g.err
		}
	}
	n := copy(p, g.buf[g.off:g.end])
	g.off += n
	return n, nil
}
